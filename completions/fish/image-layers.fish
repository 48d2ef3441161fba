# fish completion for image-layers(1)

function __image_layers_images
    image-layers --list 2>/dev/null | awk 'NR > 1 { print $1 }'
end

complete -c image-layers -s h -l help -d 'Print the options and exit'
complete -c image-layers -s V -l version -d 'Print the version and exit'
complete -c image-layers -s v -l verbose -d 'Trace the variables set and the store operations'
complete -c image-layers -l dry-run -d 'Show the plan without changing anything'
complete -c image-layers -l store -x -a '(__fish_complete_directories)' -d 'The image store'
complete -c image-layers -l import -r -a 'oci: oci-archive: docker-archive: -' -d 'Import SRC'
complete -c image-layers -l pull -x -d 'Pull REF from its registry'
complete -c image-layers -l insecure -d 'With --pull: allow plain http and unverified https'
complete -c image-layers -l quiet -d 'With --pull: no progress on stderr'
complete -c image-layers -l platform -x -a 'linux/amd64 linux/arm64 linux/arm/v7 linux/386 linux/ppc64le linux/s390x linux/riscv64' -d 'Platform to pick from a multi-arch index'
complete -c image-layers -l list -d 'List the images'
complete -c image-layers -l inspect -x -a '(__image_layers_images)' -d 'Print the config of IMAGE as JSON'
complete -c image-layers -l tag -x -a '(__image_layers_images)' -d 'Give IMAGE another name'
complete -c image-layers -l remove -x -a '(__image_layers_images)' -d 'Remove the name of IMAGE'
complete -c image-layers -l commit -x -a '(__fish_complete_directories)' -d 'Make DIR a new layer on IMAGE'
complete -c image-layers -l map-auto -d 'Work in a user namespace mapping your subordinate ids'
complete -c image-layers -l keep-env -d 'Keep the KAGO_ variables for the command'
complete -c image-layers -x -a '(__image_layers_images)'
