// PNG and npy I/O
