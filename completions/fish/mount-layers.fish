# fish completion for mount-layers(1)

complete -c mount-layers -s h -l help -d 'Print the options and exit'
complete -c mount-layers -s V -l version -d 'Print the version and exit'
complete -c mount-layers -s v -l verbose -d 'Trace every kernel call on stderr'
complete -c mount-layers -l dry-run -d 'Print the kernel calls without making them'
complete -c mount-layers -l layer -x -a '(__fish_complete_directories)' -d 'A read-only layer (first = bottom)'
complete -c mount-layers -l upper -x -a '(__fish_complete_directories)' -d 'Keep changes in DIR'
complete -c mount-layers -l tmp-upper -d 'Keep changes in a tmpfs (=SIZE limits it)'
complete -c mount-layers -l target -x -a '(__fish_complete_directories)' -d 'Assemble the root in DIR'
complete -c mount-layers -l read-only -d 'Make the final root read-only'
complete -c mount-layers -l bind -r -d 'Bind SRC:DST[:ro] into the root'
complete -c mount-layers -l tmpfs -x -d 'Mount a tmpfs on DST[:SIZE[:MODE]]'
complete -c mount-layers -l symlink -x -d 'Create the symlink TARGET:LINK'
complete -c mount-layers -l mkdir -x -d 'Create the directory DST[:MODE]'
complete -c mount-layers -l file -r -d 'Copy the host file SRC:DST into the root'
complete -c mount-layers -l chdir -x -d 'Run the command in DIR inside the root'
complete -c mount-layers -l proc -d 'Mount a new /proc with masked paths'
complete -c mount-layers -l dev -d 'Mount a minimal /dev'
complete -c mount-layers -l sys -d 'Mount a read-only /sys'
complete -c mount-layers -l hosts -d "Bind the state dir's hosts and hostname"
complete -c mount-layers -l resolv -d "Bind the state dir's resolv.conf"
complete -c mount-layers -l pivot -d 'pivot_root into the new root'
complete -c mount-layers -l keep-env -d 'Keep the KAGO_ variables'
complete -c mount-layers -l env -x -d 'With --pivot: set NAME=VALUE for the command'
complete -c mount-layers -l pass-env -x -a '(set -n)' -d 'With --pivot: pass the caller\'s variable NAME'
complete -c mount-layers -l host-env -d 'With --pivot: keep the caller\'s whole environment'
# The wrapped command.
complete -c mount-layers -n '__fish_is_first_arg; or not string match -q -- "-*" (commandline -ct)' -a '(__fish_complete_subcommand)'
