# cg-limit: static, no extra libraries.
LDLIBS_cg-limit :=
