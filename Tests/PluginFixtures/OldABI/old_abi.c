/* Test fixture: a layer plugin built for an older plugin API (version 0).
 * inverse-set must refuse it with a message naming both versions. */
#include "old_abi.h"

int inverse_set_plugin_abi_version(void) { return 0; }

int inverse_set_plugin_register(void *registry, const char *origin) {
    (void)registry;
    (void)origin;
    return -1;
}
