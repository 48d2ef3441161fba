# unshare-run: no library beyond libkago; static like every program that
# may run after pivot_root.
LDLIBS_unshare-run :=
