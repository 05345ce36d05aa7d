import GraphIR
import Tensors

/// A dataset mean to subtract from network inputs.
///
/// Accepted: a `.npy` of shape (C, H, W) (a mean image, e.g. ImageNet's
/// 3 x 256 x 256 in BGR order and 0-255 scale), (1, C, H, W) (the same,
/// as numpy gets it from a BlobProto; returned as (C, H, W)) or (C) (one value per
/// channel). Caffe's `.binaryproto` is rejected with instructions to convert it.
public struct MeanFile {
    public static func read(_ path: String) throws -> Tensor {
        if path.lowercased().hasSuffix(".binaryproto") {
            throw IOError(path, "is a Caffe .binaryproto mean; convert it to .npy first, with the inverse-set tool "
                + "(see `inverse-set --help`) or with numpy and pycaffe: "
                + "b = caffe.proto.caffe_pb2.BlobProto(); b.ParseFromString(open(path, 'rb').read()); "
                + "numpy.save('mean.npy', caffe.io.blobproto_to_array(b)[0])")
        }
        let t = try NPY.read(path)
        let dims = t.shape.dims
        guard t.count > 0, dims.allSatisfy({ $0 > 0 }) else {
            throw IOError(path, "mean has shape \(t.shape) with no values")
        }
        switch dims.count {
        case 1, 3: return t
        case 4 where dims[0] == 1:
            t.reshape(Shape(Array(dims.dropFirst())))   // same count: contents kept
            return t
        default:
            throw IOError(path, "mean has shape \(t.shape); expected (C, H, W), (1, C, H, W) or (C)")
        }
    }
}
