// Placeholder: the AssemblyScript build is added with the wasm kernels.
