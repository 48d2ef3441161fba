// One libarchive-internal function, defined here so that a static
// image-layers does not pull in every archive format libarchive can write.
//
// The pax writer (the only writer kago uses, for --commit) calls
// __archive_write_entry_filetype_unsupported() to report an entry it cannot
// store. Its definition sits in archive_write_set_format.o beside the table
// of all format setters, so linking it statically would bring in xar (and
// with it libxml2 and ICU, tens of MB), zip, 7-zip, mtree and their hashes
// and compressors. mk/image-layers.mk links this object first
// (-Wl,-u,SYMBOL), so the linker takes the symbol from here and never opens
// that member. The behaviour is the same: an error on the archive that
// names the entry, the format and the file type.
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>

extern "C" void __archive_write_entry_filetype_unsupported(struct archive* a,
                                                           struct archive_entry* entry,
                                                           const char* format) {
    const char* kind;
    switch (archive_entry_filetype(entry)) {
        case AE_IFSOCK: kind = "a socket"; break;
        case AE_IFCHR: kind = "a character device"; break;
        case AE_IFBLK: kind = "a block device"; break;
        case AE_IFIFO: kind = "a FIFO"; break;
        case AE_IFLNK: kind = "a symbolic link"; break;
        case AE_IFDIR: kind = "a directory"; break;
        case AE_IFREG: kind = "a regular file"; break;
        default: kind = "a file of an unknown type"; break;
    }
    const char* path = archive_entry_pathname(entry);
    archive_set_error(a, EINVAL, "the %s format cannot store %s (%s)", format ? format : "archive",
                      kind, path ? path : "no name");
}
