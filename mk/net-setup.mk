# net-setup links libmnl and libnftnl, which Debian ships only as shared
# libraries: it is the one dynamic program (it runs on the host, never
# after pivot_root).
DYNAMIC_PROGRAMS += net-setup
LDLIBS_net-setup := -lmnl -lnftnl
UNIT_LDLIBS += -lmnl -lnftnl
