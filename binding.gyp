{
  "targets": [
    {
      "target_name": "fallocate",
      "sources": ["src/fallocate.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
