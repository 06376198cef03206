"""The images a Dockerfile reads (`build.dockerfile`), found as the builder would find them."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from dockyard.build.builder_flags import extract_builder_flags
from dockyard.build.dockerfile import (
    DockerfileError,
    ImageUse,
    image_uses,
    read_dockerfile,
)


def refs(text: str, **args: str) -> list[tuple[int, str, str]]:
    return [(u.line, u.instruction, u.reference) for u in image_uses(text, args)]


def test_from_copy_from_and_run_mount_are_found_with_their_lines() -> None:
    text = ("FROM dockyard/busybox:1 AS build\n"
            "RUN echo hi\n"
            "COPY --from=alice/app:1 /a /b\n"
            "RUN --mount=type=bind,target=/x,from=bob/tools:2 true\n"
            "from --platform=linux/amd64 other:3\n")
    assert refs(text) == [(1, "FROM", "dockyard/busybox:1"),
                          (3, "COPY --from", "alice/app:1"),
                          (4, "RUN --mount from", "bob/tools:2"),
                          (5, "FROM", "other:3")]


def test_earlier_stages_and_scratch_are_not_images() -> None:
    text = ("FROM dockyard/busybox:1 AS Build\n"
            "FROM build\n"
            "COPY --from=BUILD /a /b\n"
            "COPY --from=0 /a /b\n"
            "FROM scratch\n"
            "COPY --from=1 /a /b\n")
    assert refs(text) == [(1, "FROM", "dockyard/busybox:1")]


def test_what_only_looks_like_a_stage_is_an_image() -> None:
    """A later stage's name, an index past the stages and `FROM 0` name images to the
    builder (`0` then is an image id prefix)."""
    text = ("FROM a:1\n"
            "COPY --from=later /a /b\n"
            "COPY --from=7 /a /b\n"
            "FROM 0\n"
            "FROM b:1 AS later\n")
    assert refs(text) == [(1, "FROM", "a:1"), (2, "COPY --from", "later"),
                          (3, "COPY --from", "7"), (4, "FROM", "0"), (5, "FROM", "b:1")]


def test_global_args_and_build_args_are_substituted_in_from() -> None:
    text = ("ARG BASE=dockyard/busybox\n"
            "ARG VERSION=1\n"
            "ARG UNSET\n"
            "FROM ${BASE}:$VERSION\n"
            "FROM \"${UNSET:-fallback}:${VERSION:+2}\"\n"
            "FROM ${UNSET-x}:${UNSET+y}z\n")
    assert [r for _, _, r in refs(text)] == ["dockyard/busybox:1", "fallback:2", "x:z"]
    assert [r for _, _, r in refs(text, BASE="alice/app", VERSION="9")][:1] == ["alice/app:9"]


def test_stage_args_are_substituted_in_copy_from_but_not_in_from() -> None:
    text = ("ARG SRC=global:1\n"
            "FROM a:1\n"
            "ARG SRC\n"
            "COPY --from=$SRC /a /b\n"
            "ARG OTHER=stage:2\n"
            "COPY --from=${OTHER} /a /b\n"
            "FROM ${OTHER:-b}:3\n")
    assert refs(text) == [(1 + 1, "FROM", "a:1"), (4, "COPY --from", "global:1"),
                          (6, "COPY --from", "stage:2"), (7, "FROM", "b:3")]


@pytest.mark.parametrize("text", [
    "ARG BASE\nFROM $BASE\n",
    "FROM ${NOPE}\n",
    "FROM a:1\nCOPY --from=$NOPE /a /b\n",
    "ARG BASE=x\nFROM ${BASE%%y}\n",
    "ARG BASE=x\nFROM ${BASE/x/y}\n",
    "FROM ${BASE\n",
    "FROM\n",
    "ARG A=$NOPE\nFROM $A\n",
])
def test_what_cannot_be_resolved_is_an_error(text: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        image_uses(text)
    assert caught.value.line is not None


def test_unused_unresolvable_args_are_no_error() -> None:
    assert refs("ARG A=$NOPE\nFROM b:1\n") == [(2, "FROM", "b:1")]


def test_continuations_comments_and_the_escape_directive() -> None:
    text = ("# escape=`\n"
            "\n"
            "# a comment\n"
            "FROM `\n"
            "  # inside\n"
            "\n"
            "  alice/app:1\n"
            "COPY --from=bob/x:1 `\n"
            "  /a /b\n")
    assert refs(text) == [(4, "FROM", "alice/app:1"), (8, "COPY --from", "bob/x:1")]
    assert refs("FROM \\\n  c:1 \\\n  AS s\nFROM s\n") == [(1, "FROM", "c:1")]


def test_onbuild_copy_from_is_always_an_image() -> None:
    text = "FROM a:1 AS base\nONBUILD COPY --from=base /a /b\nONBUILD RUN true\n"
    assert refs(text) == [(1, "FROM", "a:1"), (2, "ONBUILD COPY --from", "base")]


def test_quoted_mount_options_do_not_hide_a_source() -> None:
    text = 'FROM a:1\nRUN --mount=type=bind,source="a b",from=alice/app:1 true\n'
    assert refs(text)[1:] == [(2, "RUN --mount from", "alice/app:1")]


# -- reading it out of the context ------------------------------------------------------------
def _tar(members: dict[str, bytes | str], compress: bool = False) -> bytes:
    """A tar of files (bytes) and symbolic links (str: the target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, value in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    data = buffer.getvalue()
    return gzip.compress(data) if compress else data


def test_the_dockerfile_is_read_from_the_context_only() -> None:
    context = _tar({"Dockerfile": b"FROM a:1\n", "sub/Other": b"FROM b:1\n"}, compress=True)
    assert read_dockerfile(context) == "FROM a:1\n"
    assert read_dockerfile(context, "sub/Other") == "FROM b:1\n"
    assert read_dockerfile(context, "./sub/../sub/Other") == "FROM b:1\n"
    assert read_dockerfile(_tar({"dockerfile": b"FROM c:1\n"})) == "FROM c:1\n"
    for missing in ("/etc/passwd", "../Dockerfile", "nope"):
        with pytest.raises(DockerfileError):
            read_dockerfile(context, missing)


def test_links_are_followed_inside_the_archive_only() -> None:
    context = _tar({"real/Dockerfile": b"FROM a:1\n", "Dockerfile": "real/Dockerfile",
                    "up": "../../etc/passwd", "abs": "/real/Dockerfile", "dir": "real",
                    "loop": "loop"})
    assert read_dockerfile(context) == "FROM a:1\n"
    assert read_dockerfile(context, "abs") == "FROM a:1\n"
    assert read_dockerfile(context, "dir/Dockerfile") == "FROM a:1\n"
    for path in ("up", "loop"):
        with pytest.raises(DockerfileError):
            read_dockerfile(context, path)


def test_a_huge_dockerfile_is_refused_unread() -> None:
    with pytest.raises(DockerfileError, match="more than"):
        read_dockerfile(_tar({"Dockerfile": b"#" * 2000}), max_bytes=1000)


def test_an_image_use_says_where() -> None:
    assert image_uses("FROM a:1\n") == [ImageUse(1, "FROM", "a:1")]


def test_directives_are_read_as_docker_reads_them() -> None:
    """Only known directives, only before anything else, each once: an unknown one is a
    comment that ends them, so a later `escape` is a comment too."""
    late = ("# foo=bar\n# escape=`\nFROM a:1\nRUN echo `\nFROM b:1\\\n  AS t\nFROM c:1\n"
            "COPY --from=t /a /b\n")
    assert refs(late) == [(3, "FROM", "a:1"), (5, "FROM", "b:1"), (7, "FROM", "c:1")]
    with pytest.raises(DockerfileError, match="only one escape"):
        image_uses("# escape=`\n# escape=\\\nFROM a:1\n")
    with pytest.raises(DockerfileError, match="escape"):
        image_uses("# escape=x\nFROM a:1\n")
    assert refs("# syntax=docker/dockerfile:1\n# escape=`\nFROM `\n c:1\n") == [
        (3, "FROM", "c:1")]


def test_a_trailing_escape_always_continues_and_escapes_follow_the_directive() -> None:
    with pytest.raises(DockerfileError, match="FROM takes"):  # one FROM of 5 words
        image_uses("FROM a:1 AS s \\\\\nFROM b:1\n")
    assert refs("# escape=`\nARG X=c\nFROM `$X:1\nFROM $X:1\n")[1:] == [(4, "FROM", "c:1")]
    with pytest.raises(DockerfileError):
        image_uses("# escape=`\nFROM a:1\nCOPY --from=\\$X /a /b\n")


def test_words_and_lines_split_where_docker_splits_them() -> None:
    """A tab after the keyword still makes a FROM; only "\\n" ends a line (a lone "\\r" does
    not), so no instruction the builder runs is missed."""
    assert refs("FROM\talice/app:1\nCOPY\t--from=bob/x:1\t/a /b\n") == [
        (1, "FROM", "alice/app:1"), (2, "COPY --from", "bob/x:1")]
    assert refs("FROM a:1\r\nRUN echo \\\r\n  hi\r\nFROM b:1\r\n") == [
        (1, "FROM", "a:1"), (4, "FROM", "b:1")]
    with pytest.raises(DockerfileError, match="'\\\\r'"):  # one line to the engine
        image_uses("FROM a:1\rFROM b:1\n")
    assert refs("onbuild\tcopy --from=c:1 /a /b\nFROM d:1\n") == [
        (1, "ONBUILD COPY --from", "c:1"), (2, "FROM", "d:1")]


def test_a_path_sent_twice_is_refused() -> None:
    """Docker keeps the last of two entries of one path, but a hard link made between them
    keeps the first: which Dockerfile the build reads is not for this check to guess."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("x", b"FROM alice/app:1\n"), ("x", b"FROM dockyard/busybox:1\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DockerfileError, match="more than once"):
        read_dockerfile(buffer.getvalue(), "x")


# -- what the engine reads differently: refused before anything is built -------------------
def refused(text: str, match: str | None = None) -> DockerfileError:
    with pytest.raises(DockerfileError, match=match) as caught:
        image_uses(text)
    assert caught.value.line is not None
    return caught.value


def test_a_quoted_flag_name_is_refused() -> None:
    """Bypass (a): the engine removes the quotes and reads `--from=`."""
    assert extract_builder_flags('--"from"=4c0e4cbd36a2 /secret /stolen')[0][0].name == "from"
    problem = refused('FROM dockyard/busybox:1\nCOPY --"from"=4c0e4cbd36a2 /secret /stolen\n',
                      "name")
    assert problem.line == 2
    refused("FROM dockyard/busybox:1\nCOPY --'from'=4c0e4cbd36a2 /secret /stolen\n")
    refused('FROM dockyard/busybox:1\nCOPY "--from"=4c0e4cbd36a2 /secret /stolen\n'
            'COPY --"from=4c0e4cbd36a2" /secret /stolen\n')


def test_a_backslash_in_a_flag_name_is_refused_whatever_the_escape() -> None:
    """Bypass (b): a backslash always escapes in flags, even under `# escape=``."""
    assert extract_builder_flags("--fr\\om=4c0e4cbd /a /b")[0][0].name == "from"
    assert refused("FROM dockyard/busybox:1\nCOPY --fr\\om=4c0e4cbd /secret /stolen\n",
                   "name").line == 2
    refused("# escape=`\nFROM dockyard/busybox:1\nCOPY --fr\\om=4c0e4cbd /secret /stolen\n")


GO_BYTE_SPACES = ["\t", "\n", "\v", "\f", "\r", " ", "\x85", "\xa0"]


@pytest.mark.parametrize("space", GO_BYTE_SPACES)
def test_flags_split_at_every_byte_go_calls_a_space(space: str) -> None:
    words, rest = extract_builder_flags(f"--chown=0{space}--from=4c0e4cbd36a2 /secret /stolen")
    assert [(w.name, w.value) for w in words] == [("chown", "0"), ("from", "4c0e4cbd36a2")]
    assert rest == "/secret /stolen"
    words, _ = extract_builder_flags("--chown=0\x1c--from=x /a /b")  # not a space to Go
    assert [w.name for w in words] == ["chown"]


@pytest.mark.parametrize("raw", [b"\x09", b"\x0b", b"\x0c", b"\x0d", b"\x85", b"\xa0",
                                 b"\xc3\xa0", b"\xc2\xa0", b"\x1c", b"\x00", b"\x7f"])
def test_bypass_c_no_byte_but_printable_ascii_and_tab_in_image_lines(raw: bytes) -> None:
    """Bypass (c), as the server reads it: the raw bytes in the uploaded context."""
    line = b"COPY --chown=0" + raw + b"--from=4c0e4cbd36a2 /secret /stolen\n"
    text = read_dockerfile(_tar({"Dockerfile": b"FROM dockyard/busybox:1\n" + line}))
    if raw == b"\x09":  # a tab is a blank: the second flag is seen (and checked)
        assert refs(text) == [(1, "FROM", "dockyard/busybox:1"),
                              (2, "COPY --from", "4c0e4cbd36a2")]
    else:
        assert refused(text, "printable ASCII").line == 2


@pytest.mark.parametrize("keyword", ["FROM", "ADD", "RUN", "ONBUILD RUN"])
def test_non_ascii_is_refused_in_every_image_or_source_line(keyword: str) -> None:
    text = f"FROM a:1\n{keyword} /caf\u00e9 /x\n"
    assert refused(text, "printable ASCII").line == 2
    assert refs("FROM a:1\nLABEL description=caf\u00e9\n# \u00e0 comment\n")  # elsewhere: ok


def test_bypass_d_a_stage_cannot_name_itself() -> None:
    """The engine knows a stage's name only once the stage is finished: within it, the name
    is an image reference (here an id prefix of alice's image)."""
    text = ("FROM dockyard/busybox:1 AS b9c48f95de13\n"
            "COPY --from=b9c48f95de13 /secret /stolen\n"
            "COPY --from=0 /secret /stolen\n")
    assert refs(text)[1:] == [(2, "COPY --from", "b9c48f95de13"), (3, "COPY --from", "0")]
    assert refs("FROM x:1 AS b9c4\nFROM b9c4 AS b9c4\n") == [(1, "FROM", "x:1")]
    assert refs("FROM b9c4 AS b9c4\n") == [(1, "FROM", "b9c4")]
    later = "FROM a:1 AS b9c48f95de13\nFROM a:1\nCOPY --from=b9c48f95de13 /s /d\n"
    assert refs(later) == [(1, "FROM", "a:1"), (2, "FROM", "a:1")]


@pytest.mark.parametrize("line", [
    "COPY --FROM=alice/app:1 /a /b",  # the engine's names are lower case
    "COPY --frm=alice/app:1 /a /b",
    "ADD --from=alice/app:1 /a /b",  # ADD has no --from
    "RUN --mount2=from=alice/app:1 true",
    "COPY --from=ok:1 --unknown /a /b",
])
def test_unknown_flags_are_refused(line: str) -> None:
    assert refused(f"FROM a:1\n{line}\n", "no flag").line == 2


def test_known_flags_still_work() -> None:
    text = ("FROM --platform=linux/amd64 a:1 AS one\n"
            "COPY --chown=1:1 --chmod=644 --link --from=one /a /b\n"
            "ADD --chown=1 --chmod=600 --checksum=sha256:00 --keep-git-dir=true --link "
            "--exclude=*.md x.tar /b\n"
            "COPY --parents --exclude=*.txt a /b\n"
            "RUN --network=none --security=sandbox --mount=type=cache,target=/c true\n")
    assert refs(text) == [(1, "FROM", "a:1"), (2, "COPY --from", "one")]
    refused("FROM --platform=x --from=y a:1\n", "no flag")
    refused("FROM a:1\nONBUILD --x COPY /a /b\n", "ONBUILD")


@pytest.mark.parametrize("value", ['"a b"', "a,b", "+0", "", "${X}y z", "'\"a\"'", "a$"])
def test_a_from_value_must_be_plain(value: str) -> None:
    refused(f"FROM a:1\nCOPY --from={value} /a /b\n")


def test_from_values_are_unquoted_as_the_engine_unquotes_them() -> None:
    assert refs('FROM a:1\nCOPY --from="alice/app:1" /a /b\nCOPY --from=b\'o\'b:1 /a /b\n'
                "COPY -- --from=x /a /b\nCOPY --from=a\\b'c'\"d\" /a /b\n")[1:] == [
        (2, "COPY --from", "alice/app:1"), (3, "COPY --from", "bob:1"),
        (5, "COPY --from", "abcd")]
    refused("FROM a:1\nCOPY --from /a /b\n")  # no value
    assert refs('FROM a:1\nRUN --mount=type=bind,"from=alice/app:1" true\n')[1:] == [
        (2, "RUN --mount from", "alice/app:1")]  # the engine removed those quotes
    refused("FROM a:1\nRUN --mount='type=bind,\"from=alice/app:1\"' true\n", "quotes")


@pytest.mark.parametrize("line", [
    "ADD http://127.0.0.1:7612/s.txt /stolen",
    "ADD https://example.com/x /x",
    "ADD HTTP://127.0.0.1:7612/s.txt /stolen",
    'ADD "http"://127.0.0.1:7612/s.txt /stolen',
    "ADD http:\\//127.0.0.1:7612/s.txt /stolen",
    'ADD ["http://127.0.0.1:7612/s.txt", "/stolen"]',
    'ADD ["http://127.0.0.1:7612/s.txt","/stolen"]',
    "ADD git@github.com:a/b.git /src",
    "ADD ftp://host/x /x",
    "ADD --chown=1 a http://x /d/",
    "ONBUILD ADD http://127.0.0.1:7612/s.txt /stolen",
])
def test_add_from_a_url_is_refused(line: str) -> None:
    problem = refused(f"FROM a:1\n{line}\n", "URL")
    assert problem.line == 2 and problem.hint is not None and "RUN" in problem.hint


def test_a_url_escaped_for_a_later_build_is_refused() -> None:
    """Under `# escape=``, a backslash escapes nothing here, but an ONBUILD trigger is parsed
    again in the later build, where it does: `http:\\//` is `http://` there."""
    refused("# escape=`\nFROM a:1\nONBUILD ADD http:\\//127.0.0.1:7612/s /x\n", "URL")
    refused("FROM a:1\nADD http:`//127.0.0.1:7612/s /x\n", "URL")


def test_add_of_context_files_still_works_and_variables_only_in_its_destination() -> None:
    assert refs("FROM a:1\nARG D=/srv\nADD app.tar.gz $D/\nADD a b /c/\n") == [
        (1, "FROM", "a:1")]
    refused("FROM a:1\nARG U=http://127.0.0.1:7612/s\nADD $U /x\n", "variable")
    refused("FROM a:1\nENV U=x\nADD ${U} /x\n", "variable")
    refused('FROM a:1\nADD ["$U", "/x"]\n', "variable")


def test_a_directive_after_blanks_counts_as_the_engine_counts_it() -> None:
    """The engine trims a line before it looks for a directive: with ` as the escape, the
    backslash ends no line, so the COPY is an instruction of its own."""
    text = " # escape=`\nFROM a:1\nRUN echo \\\nCOPY --from=alice/x:1 /a /b\n"
    assert refs(text)[1:] == [(4, "COPY --from", "alice/x:1")]
    # A blank the engine's `\s` does not know makes it a comment: `\` stays the escape.
    text = "# escape\u00a0=`\nFROM a:1\nRUN echo `\nCOPY --from=alice/x:1 /a /b\n"
    assert refs(text)[1:] == [(4, "COPY --from", "alice/x:1")]


def test_a_keyword_that_is_not_ascii_is_refused() -> None:
    """Go lower-cases U+0130 to `i`: `ONBU\u0130LD` is an ONBUILD to the engine."""
    refused("FROM a:1\nONBU\u0130LD COPY --from=alice/x:1 /a /b\n", "not ASCII")


def test_the_projects_dockerfiles_pass() -> None:
    root = Path(__file__).resolve().parents[2]
    found = sorted([*root.glob("examples/**/Dockerfile"),
                    *root.glob("tests/engine/projects/**/Dockerfile")])
    assert len(found) >= 4
    for path in found:
        assert {u.reference for u in image_uses(path.read_text())} == {
            "dockyard/busybox:1"}, path
