# mount-layers: static, no extra libraries (the new mount API is in glibc 2.36).
LDLIBS_mount-layers :=
