#!/usr/bin/env python3
"""make-oci-image.py ROOTFS OUT [--ref NAME] [--arch ARCH] [--index ARCH,...] [--zstd] [--bad KIND]

Writes OUT, an OCI image layout holding a three-layer test image made from
ROOTFS (the busybox root filesystem):

  layer 1 (plain tar)   ROOTFS, plus /data/keep, /data/gone, /olddir/a,
                        /opq/lower, /dev/kago-null (character device 1:3)
  layer 2 (gzip)        deletes /data/gone (.wh.gone) and /olddir (.wh.olddir);
                        /opq is opaque (.wh..wh..opq) with /opq/upper;
                        /data/orig with a hard link /data/hard, a symlink
                        /data/sym -> orig, a setuid root file /data/suid
                        (04755), /data/cap with security.capability
                        (cap_net_raw, effective)
  layer 3 (gzip; zstd with --zstd)
                        /app/hello (owned by 1000:1000)

The config: User "1000", WorkingDir "/app", Env PATH and GREETING=hello,
Entrypoint ["/bin/sh", "-c"], Cmd ["echo $GREETING from $(pwd) as $(id -u)"].

--index ARCH,...  the image is an image index with one manifest per
                  architecture (all but the host's hold the same layers)
--bad KIND        a broken image: corrupt-blob (a layer blob's bytes
                  changed after hashing), digest-mismatch (the config
                  blob's bytes changed after hashing), diff-id (the config's
                  diff_id is wrong), truncated (layer 3 cut short, hashed
                  as cut), traversal (an entry ../../escaped), symlink-escape
                  (an entry esc -> /tmp, then esc/pwned), media-type (an
                  unknown layer media type), missing-blob (a layer blob
                  removed), gzip-cut (layer 2's gzip stream cut short,
                  hashed as cut), gzip-crc (layer 2's gzip CRC-32 wrong,
                  hashed as wrong)
"""
import argparse, gzip, hashlib, io, json, os, struct, subprocess, sys, tarfile

ap = argparse.ArgumentParser()
ap.add_argument("rootfs")
ap.add_argument("out")
ap.add_argument("--ref", default="test:1")
ap.add_argument("--arch", default="amd64")
ap.add_argument("--index", default="")
ap.add_argument("--bad", default="")
ap.add_argument("--zstd", action="store_true")
a = ap.parse_args()

MTIME = 1700000000


def info(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", uid=0, gid=0, **kw):
    t = tarfile.TarInfo(name)
    t.type = kind
    t.mode = mode
    t.uid, t.gid = uid, gid
    t.mtime = MTIME
    t.size = len(data) if kind == tarfile.REGTYPE else 0
    for k, v in kw.items():
        setattr(t, k, v)
    return t, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def tar_of(entries, rootfs=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        if rootfs:
            for dirpath, dirnames, filenames in os.walk(rootfs):
                dirnames.sort()
                for n in sorted(dirnames) + sorted(filenames):
                    full = os.path.join(dirpath, n)
                    rel = os.path.relpath(full, rootfs)
                    ti = tf.gettarinfo(full, rel)
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = ""
                    if ti.isreg():
                        with open(full, "rb") as f:
                            tf.addfile(ti, f)
                    else:
                        tf.addfile(ti)
        for t, f in entries:
            tf.addfile(t, f)
    return buf.getvalue()


blobs = {}


def blob(data):
    d = hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return "sha256:" + d


cap = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
capinfo, capf = info("data/cap", mode=0o755, data=b"#!/bin/sh\necho cap\n")
capinfo.pax_headers = {"SCHILY.xattr.security.capability": cap.decode("latin-1")}

l1 = tar_of([
    info("data", tarfile.DIRTYPE, 0o755),
    info("data/keep", data=b"keep\n"),
    info("data/gone", data=b"gone\n"),
    info("olddir", tarfile.DIRTYPE, 0o755),
    info("olddir/a", data=b"a\n"),
    info("opq", tarfile.DIRTYPE, 0o755),
    info("opq/lower", data=b"lower\n"),
    info("dev/kago-null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3),
], rootfs=a.rootfs)
l2_entries = [
    info("data", tarfile.DIRTYPE, 0o755),
    info("data/.wh.gone"),
    info(".wh.olddir"),
    info("opq", tarfile.DIRTYPE, 0o755),
    info("opq/.wh..wh..opq"),
    info("opq/upper", data=b"upper\n"),
    info("data/orig", data=b"orig\n"),
    info("data/hard", tarfile.LNKTYPE, linkname="data/orig"),
    info("data/sym", tarfile.SYMTYPE, 0o777, linkname="orig"),
    info("data/suid", mode=0o4755, data=b"#!/bin/sh\necho suid\n"),
    (capinfo, capf),
]
l3_entries = [
    info("app", tarfile.DIRTYPE, 0o755, uid=1000, gid=1000),
    info("app/hello", data=b"hello\n", uid=1000, gid=1000),
]
if a.bad == "traversal":
    l3_entries.append(info("../../escaped", data=b"x\n"))
if a.bad == "symlink-escape":
    l3_entries += [info("esc", tarfile.SYMTYPE, 0o777, linkname="/tmp"), info("esc/pwned", data=b"x\n")]
l2 = tar_of(l2_entries)
l3 = tar_of(l3_entries)
if a.bad == "truncated":
    l3 = l3[: l3.index(b"hello\n") + 3]
raw = [l1, l2, l3]
diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in raw]
# Layer 3 is zstd with --zstd (the zstd program, make deps), else gzip:
# Debian's skopeo and umoci read no zstd layers.
if a.zstd:
    l3z = subprocess.run(["zstd", "-q", "-c"], input=l3, stdout=subprocess.PIPE, check=True).stdout
    l3type = "application/vnd.oci.image.layer.v1.tar+zstd"
else:
    l3z = gzip.compress(l3, mtime=0)
    l3type = "application/vnd.oci.image.layer.v1.tar+gzip"
stored = [l1, gzip.compress(l2, mtime=0), l3z]
if a.bad == "gzip-cut":
    stored[1] = stored[1][: len(stored[1]) // 2]
if a.bad == "gzip-crc":
    stored[1] = stored[1][:-8] + bytes([stored[1][-8] ^ 1]) + stored[1][-7:]
types = ["application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip", l3type]
if a.bad == "diff-id":
    diff_ids[1] = "sha256:" + "0" * 64
if a.bad == "media-type":
    types[2] = "application/vnd.example.layer.v1.squashfs"


def image(arch):
    cfg = {
        "created": "2023-11-14T22:13:20Z", "architecture": arch, "os": "linux",
        "config": {"User": "1000", "WorkingDir": "/app",
                   "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"],
                   "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo $GREETING from $(pwd) as $(id -u)"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "make-oci-image.py"}],
    }
    cdata = json.dumps(cfg).encode()
    cdigest = blob(cdata)
    if a.bad == "digest-mismatch":
        blobs[cdigest[7:]] = cdata.replace(b"GREETING=hello", b"GREETING=HELLO")
    layers = []
    for s, t in zip(stored, types):
        layers.append({"mediaType": t, "digest": blob(s), "size": len(s)})
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": len(cdata)},
           "layers": layers}
    mdata = json.dumps(man).encode()
    return {"mediaType": man["mediaType"], "digest": blob(mdata), "size": len(mdata),
            "platform": {"os": "linux", "architecture": arch}}, layers


if a.index:
    descs = [image(x)[0] for x in a.index.split(",")]
    idata = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": descs}).encode()
    top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": blob(idata), "size": len(idata)}
    layers = []
else:
    top, layers = image(a.arch)
    del top["platform"]
top["annotations"] = {"org.opencontainers.image.ref.name": a.ref}

os.makedirs(os.path.join(a.out, "blobs", "sha256"), exist_ok=True)
for d, data in blobs.items():
    if a.bad == "corrupt-blob" and layers and d == layers[2]["digest"][7:]:
        data = bytearray(data)
        data[len(data) // 2] ^= 0xFF
        data = bytes(data)
    if a.bad == "missing-blob" and layers and d == layers[2]["digest"][7:]:
        continue
    with open(os.path.join(a.out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
with open(os.path.join(a.out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(a.out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [top]}, f)
