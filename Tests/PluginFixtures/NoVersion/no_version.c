/* Test fixture: a library with the plugin entry point but no version symbol
 * (not built with the InverseSet plugin API). */
#include "no_version.h"

int inverse_set_plugin_register(void *registry, const char *origin) {
    (void)registry;
    (void)origin;
    return -1;
}
