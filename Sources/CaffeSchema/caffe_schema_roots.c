/* Hand-written companion of the generated caffe.pb-c.c; see caffe_schema_roots.h. */
#include "caffe.pb-c.h"
#include "caffe_schema_roots.h"

const ProtobufCMessageDescriptor *caffe_schema_net_parameter_descriptor(void) {
    return &caffe__net_parameter__descriptor;
}

const ProtobufCMessageDescriptor *caffe_schema_solver_parameter_descriptor(void) {
    return &caffe__solver_parameter__descriptor;
}

const ProtobufCMessageDescriptor *caffe_schema_solver_state_descriptor(void) {
    return &caffe__solver_state__descriptor;
}
