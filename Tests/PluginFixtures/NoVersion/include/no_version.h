int inverse_set_plugin_register(void *registry, const char *origin);
