# net-setup links libmnl, which Debian ships only as a shared library: it is
# the one dynamic program (it runs on the host, never after pivot_root).
# libnftnl and the C++ runtime are linked in (see DYNAMIC in the Makefile),
# so that only libc and libmnl are loaded at each start.
DYNAMIC_PROGRAMS += net-setup
LDLIBS_net-setup := -Wl,-Bstatic -lnftnl -Wl,-Bdynamic -lmnl
UNIT_LDLIBS += -lmnl -lnftnl
