# cap-drop: static, with libcap and libseccomp.
LDLIBS_cap-drop := -lseccomp -lcap
UNIT_LDLIBS += -lseccomp -lcap
