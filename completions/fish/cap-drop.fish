# fish completion for cap-drop(1)

set -l __cap_drop_caps all none chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap \
    linux_immutable net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module \
    sys_rawio sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time \
    sys_tty_config mknod lease audit_write audit_control setfcap mac_override mac_admin syslog \
    wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore

complete -c cap-drop -s h -l help -d 'Print the options and exit'
complete -c cap-drop -s V -l version -d 'Print the version and exit'
complete -c cap-drop -s v -l verbose -d 'Trace every kernel call on stderr'
complete -c cap-drop -l dry-run -d 'Print the kernel calls without making them'
complete -c cap-drop -l drop -x -a "$__cap_drop_caps" -d 'Drop these capabilities from the default set'
complete -c cap-drop -l keep -x -a "$__cap_drop_caps" -d 'Keep only these capabilities (also ambient)'
complete -c cap-drop -l ambient -x -a "$__cap_drop_caps" -d 'Exactly these capabilities in the ambient set'
complete -c cap-drop -l inheritable -x -a "$__cap_drop_caps" -d 'Exactly these capabilities in the inheritable set'
complete -c cap-drop -l securebits -x -a 'noroot noroot-locked no-setuid-fixup no-setuid-fixup-locked keep-caps keep-caps-locked no-cap-ambient-raise no-cap-ambient-raise-locked' -d 'Set securebits'
complete -c cap-drop -l allow-new-privs -d 'Do not set no_new_privs'
complete -c cap-drop -l user -x -a '(__fish_complete_users)' -d 'Switch to USER[:GROUP]'
complete -c cap-drop -l groups -x -a '(__fish_complete_groups)' -d 'Supplementary groups'
complete -c cap-drop -l seccomp -r -a 'default none' -d 'Seccomp filter: default, FILE or none'
complete -c cap-drop -l seccomp-log -d 'Log instead of blocking'
complete -c cap-drop -l print-profile -d 'Print the effective seccomp rules and exit'
complete -c cap-drop -l new-session -d 'Start a new session: no controlling terminal'
complete -c cap-drop -l keep-env -d 'Keep KAGO_ variables; do not set HOME, USER, LOGNAME'
complete -c cap-drop -l keep-fd -x -d 'Leave descriptor N open for the command'
complete -c cap-drop -l show -d 'Print the isolation state of PID and exit'
complete -c cap-drop -l json -d 'With --show: print JSON'
complete -c cap-drop -x -a '(__fish_complete_subcommand)'
