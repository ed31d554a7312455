"""The man pages: revo(1) and one page per command group, written in scdoc, built by meson
and installed by `meson install` to mandir/man1. Each page renders without a single groff
warning, cross-references only pages that exist, and together they document every command
`revo --help` lists and every long option each command accepts (from `revo help CMD` and
from the option tables in cli/*.c, which also hold options the usage lines leave out).

The pages are built in a throwaway meson build directory: only the man page targets, then
`meson install --tags man --destdir`, so that the test takes a few seconds and does not
depend on the C code compiling at this moment."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PREFIX = "/usr/local"
MAN1 = PREFIX.lstrip("/") + "/share/man/man1"

# Every *.1.scd in docs/ is a page; these must be among them.
PAGES = sorted(p.name[: -len(".scd")] for p in DOCS.glob("*.1.scd"))
REQUIRED = ["revo.1", "revo-issuer.1", "revo-revoke.1", "revo-crl.1", "revo-ocsp.1",
            "revo-publish.1", "revo-probe.1"]

ENV = dict(os.environ, LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat", MANWIDTH="80")

needs_scdoc = pytest.mark.skipif(
    shutil.which("scdoc") is None,
    reason="scdoc is not installed (scripts/deps.sh installs it): meson builds no man pages")


def _bin():
    for b in os.environ.get("REVO_BINS", str(ROOT / "build" / "revo")).split(":"):
        if b and os.path.exists(b):
            return b
    pytest.fail("no revo binary (REVO_BINS, or build/revo)")


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """{page name: installed path} from a throwaway meson build and `meson install`."""
    if shutil.which("meson") is None or shutil.which("ninja") is None:
        pytest.skip("meson or ninja is not installed")
    tmp = tmp_path_factory.mktemp("man")
    build, dest = tmp / "build", tmp / "dest"
    r = _run(["meson", "setup", str(build), str(ROOT), f"--prefix={PREFIX}", "-Dman=enabled"])
    assert r.returncode == 0, f"meson setup failed:\n{r.stdout}\n{r.stderr}"
    # only the pages: a target missing here means docs/meson.build does not build that page
    r = _run(["ninja", "-C", str(build)] + [f"docs/{p}" for p in PAGES])
    assert r.returncode == 0, f"building the man pages failed:\n{r.stdout}\n{r.stderr}"
    r = _run(["meson", "install", "-C", str(build), "--no-rebuild", "--tags", "man",
              "--destdir", str(dest)])
    assert r.returncode == 0, f"meson install failed:\n{r.stdout}\n{r.stderr}"
    man1 = dest / MAN1
    return {p.name: p for p in man1.glob("*.1")} if man1.is_dir() else {}


def _text(path, section=None):
    """The page's words as the reader sees them, from its roff: font escapes, zero-width
    characters and request lines dropped, whitespace collapsed. With @section, only the
    words of that section (.SH)."""
    out = []
    inside = section is None
    for line in path.read_text().splitlines():
        if line.startswith(".SH "):
            inside = section is None or line[4:].strip('"') == section
        if line.startswith(".") or line.startswith("'") or not inside:
            continue
        line = re.sub(r"\\f[BIRP]", "", line)
        line = line.replace("\\&", "").replace("\\-", "-").replace("\\e", "\\")
        line = line.replace("\\(aq", "'").replace("\\*(Aq", "'")
        out.append(line)
    return " " + re.sub(r"\s+", " ", " ".join(out)) + " "


@pytest.fixture(scope="module")
def texts(installed):
    return {name: _text(path) for name, path in installed.items()}


@pytest.fixture(scope="module")
def synopses(installed):
    return {name: _text(path, "SYNOPSIS") for name, path in installed.items()}


# ------------------------------------------------------------------ build and install


def test_pages_exist_in_docs():
    missing = [p for p in REQUIRED if p not in PAGES]
    assert not missing, f"docs/ lacks {[p + '.scd' for p in missing]}"


@needs_scdoc
def test_meson_installs_every_page(installed):
    missing = [p for p in PAGES if p not in installed]
    assert not missing, (f"meson install did not put {missing} in {MAN1} "
                         f"(installed: {sorted(installed)}); see docs/meson.build")
    extra = [p for p in installed if p not in PAGES]
    assert not extra, f"installed pages without a docs/*.scd source: {extra}"


@needs_scdoc
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_warnings(installed, page):
    path = installed.get(page)
    assert path, f"{page} was not installed"
    roff = path.read_text()
    name = page[: -len(".1")]
    assert re.search(rf'^\.TH "{re.escape(name)}" "1"', roff, re.M), f"{page}: .TH is not {name}(1)"
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "EXAMPLES", "SEE ALSO"]:
        assert re.search(rf"^\.SH {section}$", roff, re.M), f"{page} has no {section} section"
    renderers = []
    if shutil.which("man"):
        renderers.append(["man", "--warnings=w", "-l", str(path)])
    if shutil.which("groff"):
        renderers.append(["groff", "-man", "-Tutf8", "-ww", "-z", str(path)])
    if not renderers:
        pytest.skip("neither man nor groff is installed")
    for cmd in renderers:
        r = _run(cmd)
        assert r.returncode == 0 and not r.stderr.strip(), (
            f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr}")
        if cmd[0] == "man":
            assert "NAME" in r.stdout and name in r.stdout, f"{page} renders empty"


@needs_scdoc
def test_see_also_names_existing_pages(texts):
    pages = {p[: -len(".1")] for p in PAGES}
    for page, text in texts.items():
        for ref in set(re.findall(r"\b(revo(?:-[a-z]+)?)\(1\)", text)):
            assert ref in pages, f"{page} refers to {ref}(1), which does not exist"
    # revo(1) points at every group page
    for p in pages - {"revo"}:
        assert f"{p}(1)" in texts["revo.1"], f"revo(1) does not point at {p}(1)"


# ------------------------------------------------------------------ commands and options


def _commands():
    """The commands of `revo --help`, as tuples of words: ("issuer", "add")."""
    r = _run([_bin(), "--help"])
    assert r.returncode == 0, r.stderr
    cmds = []
    for line in r.stdout.splitlines():
        m = re.match(r"^  revo ((?:[a-z][a-z0-9-]*)(?: [a-z][a-z0-9-]*)?)(?: |$)", line)
        if m:
            cmds.append(tuple(m.group(1).split()))
    assert len(cmds) >= 20, f"could not read the commands from revo --help:\n{r.stdout}"
    return cmds


def _help_options(words):
    r = _run([_bin(), "help", *words])
    assert r.returncode == 0 and r.stdout.startswith("usage: revo "), (
        f"revo help {' '.join(words)}: {r.stdout}{r.stderr}")
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", r.stdout))


def _source_options():
    """{handler function: long options} from the option tables in cli/*.c, and
    {command words: handler} from the command table in cli/main.c."""
    table = {}
    main = (ROOT / "cli" / "main.c").read_text()
    for w1, w2, fn in re.findall(r'\{"([a-z-]+)",\s*(?:"([a-z-]+)"|NULL),\s*(cmd_\w+),', main):
        table[(w1, w2) if w2 else (w1,)] = fn
    opts = {}
    for src in (ROOT / "cli").glob("cmd_*.c"):
        code = src.read_text()
        arrays = {name: set(re.findall(r'\{"([a-z][a-z0-9-]*)",\s*(?:no|required|optional)_argument', body))
                  for name, body in re.findall(
                      r"^static const struct option (\w+)\[\] = \{(.*?)^\};", code, re.M | re.S)}
        for fn, body in re.findall(r"^int (cmd_\w+)\(cli_t \*cli, int argc, char \*\*argv\)\n\{(.*?)^\}",
                                   code, re.M | re.S):
            names = set(re.findall(r'\{"([a-z][a-z0-9-]*)",\s*(?:no|required|optional)_argument', body))
            for arr, arr_names in arrays.items():
                if re.search(rf"\b{arr}\b", body):
                    names |= arr_names
            opts[fn] = {"--" + n for n in names}
    return table, opts


@needs_scdoc
def test_every_command_and_option_is_documented(texts, synopses):
    table, src_opts = _source_options()
    problems = []
    for words in _commands():
        cmd = " ".join(words)
        # the command's own page: its SYNOPSIS shows "revo [GLOBAL OPTIONS] CMD"
        syn = re.compile(rf" revo (?:\[[^\]]*\] )*{re.escape(cmd)}(?![\w-])")
        pages = [p for p, t in synopses.items() if syn.search(t)]
        if not pages:
            problems.append(f"command '{cmd}' is in no page's SYNOPSIS")
            continue
        if not any(f" revo {cmd}" in texts[p] for p in pages):
            problems.append(f"command '{cmd}' is not described in {pages}")
        want = _help_options(words)
        fn = table.get(words)
        if fn in src_opts:
            want |= src_opts[fn]
        for opt in sorted(want):
            pat = re.compile(rf"(?<![\w-]){re.escape(opt)}(?![\w-])")
            if not any(pat.search(texts[p]) for p in pages):
                problems.append(f"'{cmd}' option {opt} is not documented in {pages}")
    assert not problems, "\n".join(problems)


def test_source_option_tables_are_read():
    """The option-table parser above finds the handlers and their options (so the check
    above cannot pass by reading nothing)."""
    table, opts = _source_options()
    assert table.get(("revoke",)) == "cmd_revoke" and table.get(("init",)) == "cmd_init"
    assert {"--serial", "--cn", "--publish", "--wait"} <= opts["cmd_revoke"]
    assert {"--issuer"} <= opts["cmd_cert_add"]  # through the shared ISSUER_OPT table
    assert {"--pass-file", "--force", "--listen"} <= opts["cmd_ocsp_serve"]
    missing = [fn for fn in table.values() if fn not in opts]
    assert not missing, f"no option table read for {missing}"
