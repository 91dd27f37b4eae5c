"""`brushstream weights ACTION`: list, verify and pull the manifest's files; import another project's file."""
from __future__ import annotations

EXIT_USAGE = 2


def _list(args) -> int:
    from . import weights

    for entry in weights.load_manifest().values():
        where = "bundled" if entry.bundled else f"hub:{entry.hub_repo_id}/{entry.hub_filename}"
        size = f"{entry.bytes / 1e6:.1f} MB" if entry.bytes >= 1e5 else f"{entry.bytes / 1e3:.1f} kB"
        print(f"{entry.name}\t{entry.method}\t{size}\t{entry.licence}\t{where}")
    return 0


def _verify(args) -> int:
    from . import weights

    rows = weights.verify(args.name)
    for name, status, where in rows:
        print(f"{name}\t{status}\t{where}")
    return EXIT_USAGE if any(status == "MISMATCH" for _, status, _ in rows) else 0


def _pull(args) -> int:
    from . import weights

    for path in weights.pull(args.name):
        print(path)
    return 0


def _import(args) -> int:
    from ..foreign.importer import import_file

    done = import_file(args.source, args.format, args.name, args.out_dir)
    entry = done.entry
    print(f"{done.path}\t{entry['method']}\t{done.format.name}\tsha256 {entry['sha256']}\t"
          f"(original sha256 {entry['source']['sha256']}; entry: {done.path.with_suffix('.json')})")
    return 0


def add_weights_parser(sub, parser_class) -> None:
    from ..foreign import formats

    w = sub.add_parser("weights", help="list, verify, download or import weight files")
    wsub = w.add_subparsers(dest="action", required=True, parser_class=parser_class)
    for action, func, text in (("list", _list, "every manifest file: method, size, licence, where it lives"),
                               ("verify", _verify, "check local copies against the manifest's sha256 (downloads "
                                "nothing)"),
                               ("pull", _pull, "find or download, and verify, manifest files")):
        a = wsub.add_parser(action, help=text)
        if action != "list":
            a.add_argument("name", nargs="?", help="manifest name (default: all)")
        a.set_defaults(func=func)
    known = formats()
    i = wsub.add_parser("import", help="convert another project's style network into a Brushstream file",
                        description="Formats: " + "; ".join(f"{f.name}: {f.summary}" for f in known.values()))
    i.add_argument("source", metavar="FILE_OR_HF_REF", help="a .pth/.model/.onnx file, or hf://OWNER/REPO[@REV]/FILE")
    i.add_argument("--format", default="auto", choices=["auto", *known], help="the file's layout (default: detected)")
    i.add_argument("--name", help="name of the converted file (default: the original's)")
    i.add_argument("-o", "--out-dir", default=".", help="folder for NAME.safetensors and NAME.json (default: here)")
    i.set_defaults(func=_import)
