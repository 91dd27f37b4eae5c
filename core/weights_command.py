"""`brushstream weights ACTION`: list, verify and pull the manifest's files; import another project's file; publish a
file on the Hugging Face Hub, pull one pinned to its commit (hf://...), and search the manifest and Hub repositories."""
from __future__ import annotations

import sys

EXIT_USAGE = 2


def _list(args) -> int:
    from .hub import weights

    for entry in weights.load_manifest().values():
        where = "bundled" if entry.bundled else f"hub:{entry.hub_repo_id}/{entry.hub_filename}"
        size = f"{entry.bytes / 1e6:.1f} MB" if entry.bytes >= 1e5 else f"{entry.bytes / 1e3:.1f} kB"
        print(f"{entry.name}\t{entry.method}\t{size}\t{entry.licence}\t{where}")
    return 0


def _verify(args) -> int:
    from .hub import weights

    rows = weights.verify(args.name)
    for name, status, where in rows:
        print(f"{name}\t{status}\t{where}")
    return EXIT_USAGE if any(status == "MISMATCH" for _, status, _ in rows) else 0


def _pull(args) -> int:
    from .hub import weights

    if args.name and weights.is_hub_ref(args.name):
        # A Hub reference: fetched and checked (a branch is asked of the Hub); stdout gets the pinned form.
        pin = weights.fetch_ref(args.name, announce=False)
        print(f"{args.name}: commit {pin.commit or '?'}, sha256 {pin.sha256}; cached at {pin.path}", file=sys.stderr)
        print(pin.pinned)
        return 0
    for path in weights.pull(args.name):
        print(path)
    return 0


def _publish(args) -> int:
    from .hub.publish import publish

    done = publish(args.file, args.repo, revision=args.revision, private=args.private, licence=args.licence,
                   method=args.method, styles=args.style)
    print(f"commit\t{done.commit}\t{', '.join(done.files)} on {done.repo_id}@{done.revision}")
    print(f"card\t{done.card_commit}\tREADME.md")
    print(f"pinned\t{done.pinned}")
    return 0


def _search(args) -> int:
    from .hub.search import search

    rows, problems = search(args.query or "", args.repo or [])
    for row in rows:
        print(row.line())
    for line in problems:
        print(f"brushstream: error: {line}", file=sys.stderr)
    return EXIT_USAGE if problems else 0


def _import(args) -> int:
    from .foreign.importer import import_file

    done = import_file(args.source, args.format, args.name, args.out_dir)
    entry = done.entry
    print(f"{done.path}\t{entry['method']}\t{done.format.name}\tsha256 {entry['sha256']}\t"
          f"(original sha256 {entry['source']['sha256']}; entry: {done.path.with_suffix('.json')})")
    return 0


def add_weights_parser(sub, parser_class) -> None:
    from .foreign import formats

    w = sub.add_parser("weights", help="list, verify, download or import weight files")
    wsub = w.add_subparsers(dest="action", required=True, parser_class=parser_class)
    for action, func, text in (("list", _list, "every manifest file: method, size, licence, where it lives"),
                               ("verify", _verify, "check local copies against the manifest's sha256 (downloads "
                                "nothing)"),
                               ("pull", _pull, "find or download, and verify, manifest files")):
        a = wsub.add_parser(action, help=text)
        if action == "verify":
            a.add_argument("name", nargs="?", help="manifest name (default: all)")
        elif action == "pull":
            a.add_argument("name", nargs="?", metavar="NAME_OR_HF_REF",
                           help="manifest name (default: all), or hf://OWNER/REPO[@REVISION]/FILE.safetensors: fetched, "
                                "checked, and printed pinned to its commit and sha256")
        a.set_defaults(func=func)
    p = wsub.add_parser("publish", help="upload a Brushstream file with a model card to a Hugging Face Hub repository",
                        description="Checks FILE (a Brushstream safetensors file), creates the repository if needed, "
                                    "commits the file and small thumbnails of its style images, then a model card "
                                    "(README.md) naming that commit. Prints the commits and the pinned reference "
                                    "that loads exactly this file. Needs a token with write access (`hf auth login` "
                                    "or HF_TOKEN); HF_ENDPOINT selects another Hub.")
    p.add_argument("file", help="a .safetensors file written by brushstream train or brushstream weights import")
    p.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the Hub repository (created if missing)")
    p.add_argument("--revision", default="main", metavar="BRANCH", help="branch to commit to (default main; created "
                                                                          "from main if missing)")
    p.add_argument("--private", action="store_true", help="create the repository private (an existing one keeps its "
                                                          "visibility)")
    p.add_argument("--licence", "--license", dest="licence", help="the file's licence, if its metadata names none "
                                                                  "(e.g. MIT, CC-BY-4.0)")
    p.add_argument("--method", help="the method that loads it, if its metadata names none")
    p.add_argument("--style", action="append", metavar="IMAGE", help="a style image it was trained on: a thumbnail "
                   "goes on the card (repeatable; default: the recipe's style images, if they exist here)")
    p.set_defaults(func=_publish)
    s = wsub.add_parser("search", help="find styles: manifest models and the safetensors files of Hub repositories",
                        description="Prints NAME, METHOD, STYLES, LICENCE per line (tab-separated). A Hub file's name "
                                    "is the reference that loads it, pinned to the repository's current commit.")
    s.add_argument("query", nargs="?", help="keep rows whose name, method or a style contains this (any case)")
    s.add_argument("--repo", action="append", metavar="OWNER/NAME[@REVISION]", help="also list this Hub repository's "
                                                                                     "files (repeatable)")
    s.set_defaults(func=_search)
    known = formats()
    i = wsub.add_parser("import", help="convert another project's style network into a Brushstream file",
                        description="Formats: " + "; ".join(f"{f.name}: {f.summary}" for f in known.values()))
    i.add_argument("source", metavar="FILE_OR_HF_REF", help="a .pth/.model/.onnx file, or hf://OWNER/REPO[@REV]/FILE")
    i.add_argument("--format", default="auto", choices=["auto", *known], help="the file's layout (default: detected)")
    i.add_argument("--name", help="name of the converted file (default: the original's)")
    i.add_argument("-o", "--out-dir", default=".", help="folder for NAME.safetensors and NAME.json (default: here)")
    i.set_defaults(func=_import)
