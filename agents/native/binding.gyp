{
  "targets": [
    {
      "target_name": "tandem_nowait_io",
      "sources": ["nowait-io.c", "sd-notify.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
