"""Redis storage: key layout, Lua scripts, versioned pools, model blobs and rankings."""
