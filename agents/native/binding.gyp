{
  "targets": [
    {
      "target_name": "tandem_nowait_io",
      "sources": ["nowait-io.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
