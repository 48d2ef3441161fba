// --from-host: a host program and the shared libraries it needs.
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <set>

#include "pack/tree.hpp"

namespace kago::pack {

std::string real_or(const std::string& p);

namespace {

Error bad_elf(const std::string& shown, const char* what) {
    Error e;
    e.err = ENOEXEC;
    e.what = cat(shown, ": ", what);
    return e;
}

template <class T>
bool get(std::span<const uint8_t> b, uint64_t off, T& out) {
    if (off > b.size() || sizeof(T) > b.size() - off) return false;
    memcpy(&out, b.data() + off, sizeof(T));
    return true;
}

std::string cstr(std::span<const uint8_t> b, uint64_t off) {
    if (off >= b.size()) return {};
    const char* p = reinterpret_cast<const char*>(b.data() + off);
    return std::string(p, strnlen(p, b.size() - off));
}

struct Mapped {
    std::span<const uint8_t> bytes;
    void* addr = nullptr;
    size_t len = 0;
    ~Mapped() {
        if (addr) ::munmap(addr, len);
    }
};

Status map_file(const std::string& path, Mapped& m) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return sys_error(cat("open ", path));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return sys_error(cat("stat ", path));
    if (st.st_size == 0) return {};
    m.len = static_cast<size_t>(st.st_size);
    m.addr = ::mmap(nullptr, m.len, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (m.addr == MAP_FAILED) {
        m.addr = nullptr;
        return sys_error(cat("map ", path));
    }
    m.bytes = {static_cast<const uint8_t*>(m.addr), m.len};
    return {};
}

bool is_elf(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return false;
    char m[4];
    return ::read(fd.get(), m, 4) == 4 && memcmp(m, ELFMAG, 4) == 0;
}

std::vector<std::string> library_dirs() {
    std::vector<std::string> dirs;
    std::deque<std::string> confs{"/etc/ld.so.conf"};
    std::set<std::string> read;
    while (!confs.empty()) {
        std::string c = confs.front();
        confs.pop_front();
        if (!read.insert(c).second) continue;
        std::ifstream in(c);
        std::string line;
        while (std::getline(in, line)) {
            line = line.substr(0, line.find('#'));
            while (!line.empty() && isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
            size_t s = line.find_first_not_of(" \t");
            if (s == std::string::npos) continue;
            line = line.substr(s);
            if (line.rfind("include", 0) == 0) {
                std::string pat = line.substr(7);
                pat = pat.substr(pat.find_first_not_of(" \t"));
                if (pat[0] != '/') pat = "/etc/" + pat;
                glob_t g;
                if (::glob(pat.c_str(), 0, nullptr, &g) == 0) {
                    for (size_t i = 0; i < g.gl_pathc; ++i) confs.emplace_back(g.gl_pathv[i]);
                    ::globfree(&g);
                }
            } else if (line[0] == '/') {
                dirs.push_back(line);
            }
        }
    }
    for (const char* d : {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
                          "/lib", "/usr/lib", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"})
        dirs.emplace_back(d);
    return dirs;
}

std::string dirname_of(const std::string& p) {
    auto s = p.rfind('/');
    return s == std::string::npos || s == 0 ? std::string("/") : p.substr(0, s);
}

// Add a host file at its own path (without the leading '/'). Symlinks on
// the way are kept as symlinks, so that $ORIGIN and merged /usr work.
Status add_host_path(Tree& tree, const std::string& abs, std::set<std::string>& done) {
    if (!done.insert(abs).second) return {};
    // Walk the components: a symlinked directory (/lib -> usr/lib) is
    // recorded as a symlink and followed.
    std::string cur;
    size_t i = 1;
    while (i <= abs.size()) {
        size_t j = abs.find('/', i);
        if (j == std::string::npos) j = abs.size();
        std::string next = cur + "/" + abs.substr(i, j - i);
        i = j + 1;
        struct stat st;
        if (::lstat(next.c_str(), &st) != 0) return sys_error(cat("stat ", next));
        if (S_ISLNK(st.st_mode)) {
            char buf[4096];
            ssize_t k = ::readlink(next.c_str(), buf, sizeof buf - 1);
            if (k < 0) return sys_error(cat("read link ", next));
            std::string target(buf, static_cast<size_t>(k));
            Node n;
            n.meta.type = Type::Symlink;
            n.meta.mode = 0777;
            n.meta.target = target;
            n.meta.mtime = st.st_mtim.tv_sec;
            TRY(tree.add(next.substr(1), std::move(n)));
            std::string resolved = target[0] == '/' ? target : dirname_of(next) + "/" + target;
            std::string rest = i <= abs.size() ? abs.substr(i - 1) : std::string();
            // Resolve the rest of the path through the link's target.
            char real[PATH_MAX];
            if (!::realpath(resolved.c_str(), real)) return sys_error(cat("resolve ", resolved));
            return add_host_path(tree, std::string(real) + rest, done);
        }
        if (S_ISDIR(st.st_mode)) {
            auto& nodes = tree.nodes();
            auto it = nodes.find(next.substr(1));
            if (it == nodes.end() || it->second.meta.type != Type::Dir) {
                Node n;
                n.meta.type = Type::Dir;
                n.meta.mode = st.st_mode & 07777;
                n.meta.mtime = st.st_mtim.tv_sec;
                TRY(tree.add(next.substr(1), std::move(n)));
            }
            cur = next;
            continue;
        }
        if (!S_ISREG(st.st_mode)) return usage_error(cat(next, ": not a regular file"));
        Node n;
        n.meta.type = Type::File;
        n.meta.mode = st.st_mode & 0777;
        n.meta.size = static_cast<uint64_t>(st.st_size);
        n.meta.mtime = st.st_mtim.tv_sec;
        n.content = {Content::HostPath, next, 0};
        TRY(tree.add(next.substr(1), std::move(n)));
        return {};
    }
    return {};
}

Status add_with_libraries(Tree& tree, const std::string& path, std::set<std::string>& done,
                          std::set<std::string>& walked, const std::vector<std::string>& dirs) {
    std::deque<std::string> todo{path};
    while (!todo.empty()) {
        std::string p = todo.front();
        todo.pop_front();
        char real[PATH_MAX];
        if (!::realpath(p.c_str(), real)) return sys_error(cat("resolve ", p));
        TRY(add_host_path(tree, p, done));
        if (!walked.insert(real).second) continue;
        Mapped m;
        TRY(map_file(real, m));
        ElfInfo info = TRY(read_elf(m.bytes, real));
        if (!info.interpreter.empty()) todo.push_back(info.interpreter);
        std::string origin = dirname_of(real);
        for (auto& lib : info.needed) {
            if (lib.find('/') != std::string::npos) {
                todo.push_back(lib);
                continue;
            }
            std::vector<std::string> search;
            for (auto rp : info.runpath) {
                size_t o;
                while ((o = rp.find("$ORIGIN")) != std::string::npos) rp.replace(o, 7, origin);
                while ((o = rp.find("${ORIGIN}")) != std::string::npos) rp.replace(o, 9, origin);
                search.push_back(rp);
            }
            search.insert(search.end(), dirs.begin(), dirs.end());
            bool found = false;
            for (auto& d : search) {
                std::string cand = d + "/" + lib;
                if (::access(cand.c_str(), R_OK) == 0 && is_elf(real_or(cand))) {
                    todo.push_back(cand);
                    found = true;
                    break;
                }
            }
            if (!found) {
                errno = ENOENT;
                return sys_error(cat("shared library ", lib, " needed by ", real));
            }
        }
    }
    return {};
}

}  // namespace

Result<ElfInfo> read_elf(std::span<const uint8_t> b, const std::string& shown) {
    Elf64_Ehdr eh;
    if (!get(b, 0, eh) || memcmp(eh.e_ident, ELFMAG, 4) != 0) return bad_elf(shown, "not an ELF file");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return bad_elf(shown, "not a 64-bit little-endian ELF file");
    ElfInfo info;
    uint64_t dyn_off = 0, dyn_size = 0;
    std::vector<Elf64_Phdr> loads;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        if (!get(b, eh.e_phoff + uint64_t{i} * eh.e_phentsize, ph)) return bad_elf(shown, "program header");
        if (ph.p_type == PT_INTERP) info.interpreter = cstr(b, ph.p_offset);
        if (ph.p_type == PT_DYNAMIC) {
            dyn_off = ph.p_offset;
            dyn_size = ph.p_filesz;
        }
        if (ph.p_type == PT_LOAD) loads.push_back(ph);
    }
    if (!dyn_size) return info;  // static
    auto to_offset = [&](uint64_t vaddr, uint64_t& off) {
        for (auto& l : loads)
            if (vaddr >= l.p_vaddr && vaddr < l.p_vaddr + l.p_filesz) {
                off = vaddr - l.p_vaddr + l.p_offset;
                return true;
            }
        return false;
    };
    uint64_t strtab = 0;
    std::vector<uint64_t> needed, runpath;
    for (uint64_t o = dyn_off; o + sizeof(Elf64_Dyn) <= dyn_off + dyn_size; o += sizeof(Elf64_Dyn)) {
        Elf64_Dyn d;
        if (!get(b, o, d)) return bad_elf(shown, "dynamic section");
        if (d.d_tag == DT_NULL) break;
        if (d.d_tag == DT_STRTAB) strtab = d.d_un.d_ptr;
        if (d.d_tag == DT_NEEDED) needed.push_back(d.d_un.d_val);
        if (d.d_tag == DT_RUNPATH || d.d_tag == DT_RPATH) runpath.push_back(d.d_un.d_val);
    }
    uint64_t stroff;
    if (!to_offset(strtab, stroff)) return bad_elf(shown, "string table");
    for (auto n : needed) info.needed.push_back(cstr(b, stroff + n));
    for (auto r : runpath) {
        std::string s = cstr(b, stroff + r);
        size_t i = 0;
        while (i <= s.size()) {
            size_t j = s.find(':', i);
            if (j == std::string::npos) j = s.size();
            if (j > i) info.runpath.push_back(s.substr(i, j - i));
            i = j + 1;
        }
    }
    return info;
}

std::string real_or(const std::string& p) {
    char real[PATH_MAX];
    return ::realpath(p.c_str(), real) ? std::string(real) : p;
}

Result<std::string> add_host_program(Tree& tree, const std::string& program) {
    std::string path = program;
    if (program.find('/') == std::string::npos) {
        const char* env = ::getenv("PATH");
        std::string pathvar = env ? env : "/usr/local/bin:/usr/bin:/bin";
        path.clear();
        size_t i = 0;
        while (i <= pathvar.size()) {
            size_t j = pathvar.find(':', i);
            if (j == std::string::npos) j = pathvar.size();
            std::string cand = pathvar.substr(i, j - i) + "/" + program;
            i = j + 1;
            if (::access(cand.c_str(), X_OK) == 0) {
                path = cand;
                break;
            }
        }
        if (path.empty()) {
            errno = ENOENT;
            return sys_error(cat("program ", program));
        }
    }
    if (path[0] != '/') {
        char real[PATH_MAX];
        if (!::realpath(path.c_str(), real)) return sys_error(cat("program ", path));
        path = real;
    }
    if (!is_elf(real_or(path))) return bad_elf(path, "not an ELF file (scripts need their interpreter: pack a rootfs)");
    std::set<std::string> done, walked;
    static const std::vector<std::string> dirs = library_dirs();
    TRY(add_with_libraries(tree, path, done, walked, dirs));
    // A usable root: mount points and the two files that name users.
    for (const char* d : {"proc", "dev", "sys", "tmp", "etc", "root"}) {
        if (tree.nodes().count(d)) continue;
        Node n;
        n.meta.type = Type::Dir;
        n.meta.mode = strcmp(d, "tmp") == 0 ? 01777 : strcmp(d, "root") == 0 ? 0700 : 0755;
        TRY(tree.add(d, std::move(n)));
    }
    static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    static const char group[] = "root:x:0:\nnogroup:x:65534:\n";
    for (auto [name, text] : {std::pair{"etc/passwd", passwd}, std::pair{"etc/group", group}}) {
        Node n;
        n.meta.type = Type::File;
        n.meta.mode = 0644;
        n.meta.size = strlen(text);
        uint64_t at = TRY(tree.spill(reinterpret_cast<const uint8_t*>(text), strlen(text)));
        n.content = {Content::Spill, "", at};
        TRY(tree.add(name, std::move(n)));
    }
    return path;
}

Status add_host_tree(Tree& tree, const std::string& top) {
    std::set<std::string> done, walked;
    static const std::vector<std::string> dirs = library_dirs();
    std::vector<std::string> stack{top};
    while (!stack.empty()) {
        std::string d = stack.back();
        stack.pop_back();
        DIR* dir = ::opendir(d.c_str());
        if (!dir) return sys_error(cat("open directory ", d));
        std::vector<std::string> names;
        while (struct dirent* de = ::readdir(dir))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names.emplace_back(de->d_name);
        ::closedir(dir);
        TRY(add_host_path(tree, d, done));
        for (auto& n : names) {
            std::string p = d + "/" + n;
            struct stat st;
            if (::lstat(p.c_str(), &st) != 0) continue;
            if (S_ISDIR(st.st_mode)) {
                if (n == "__pycache__") continue;
                stack.push_back(p);
            } else if (S_ISREG(st.st_mode)) {
                if (is_elf(p)) TRY(add_with_libraries(tree, p, done, walked, dirs));
                else TRY(add_host_path(tree, p, done));
            } else if (S_ISLNK(st.st_mode)) {
                Node node;
                node.meta.type = Type::Symlink;
                node.meta.mode = 0777;
                char buf[4096];
                ssize_t k = ::readlink(p.c_str(), buf, sizeof buf - 1);
                if (k < 0) continue;
                node.meta.target.assign(buf, static_cast<size_t>(k));
                TRY(tree.add(p.substr(1), std::move(node)));
            }
        }
    }
    return {};
}

}  // namespace kago::pack
