"""The README stays short and every doc page is reachable from it; no link in README.md or docs/ is broken
(files and #anchors, GitHub's heading slugs); every config option and key in conf/ is named on the docs;
docs/reference_table.py prints the leaderboard's own numbers."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli

README = REPO / "README.md"
DOCS = REPO / "docs"
CONF = REPO / "conf"
README_MAX_LINES = 300

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text without fenced code blocks (their '#' lines are not headings, their brackets not links)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation but '-' and '_' removed,
    spaces to hyphens ('Top level (`conf/config.yaml`)' -> 'top-level-confconfigyaml')."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading reads as its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a page's headings give, the second of two equal ones with '-1' as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for _, heading in HEADING.findall(prose(path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    """The link and image targets of a page's prose, outside code."""
    return LINK.findall(INLINE_CODE.sub("", prose(path.read_text())))


def broken_links(path: Path) -> list[str]:
    """'target: why' for every relative link of `path` whose file or #anchor does not exist."""
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    return broken


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move the detail into docs/ (at most {README_MAX_LINES})"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_broken_links(page):
    assert broken_links(page) == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in links(README)}
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert unlinked == [], f"docs pages the README does not link to: {unlinked}"


def test_the_link_check_sees_a_broken_file_an_unknown_anchor_and_ignores_code(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n## Top level (`conf/config.yaml`)\n## Same\n## Same\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#top-level-confconfigyaml) [ok](other.md#same-1) [ok](#here)\n"
                    "[gone](missing.md) [bad anchor](other.md#nowhere) [bad](other.md#same-2)\n"
                    "![picture](images/none.png) [web](https://example.org/x)\n"
                    "`[not a link](nothing.md)`\n```\n[not a link](nothing.md)\n# not a heading\n```\n## Here\n")
    assert broken_links(page) == [
        f"missing.md: no file {tmp_path / 'missing.md'}",
        "other.md#nowhere: no heading with anchor #nowhere in other.md",
        "other.md#same-2: no heading with anchor #same-2 in other.md",
        f"images/none.png: no file {tmp_path / 'images' / 'none.png'}",
    ]


# ---- every option and key of conf/ is named in its group's section of docs/configs.md ----

def sections(path: Path) -> dict[str, str]:
    """'## heading' -> the text up to the next '##' heading (code blocks left out)."""
    text = prose(path.read_text())
    parts = re.split(r"^## +(.*)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def code_spans(text: str) -> list[str]:
    return [span.strip("`") for span in INLINE_CODE.findall(text)]


def named_option(text: str, group: str, option: str) -> bool:
    """`option` as a code span of its own, or `group=option` inside one."""
    pattern = re.compile(rf"(?<![\w/]){re.escape(group)}={re.escape(option)}(?!\w)")
    return any(span == option or pattern.search(span) for span in code_spans(text))


def named_key(text: str, key: str) -> bool:
    """`key` as a word of a code span (`key`, `dataset.key`, `key=1`)."""
    return any(key in re.findall(r"\w+", span) for span in code_spans(text))


def group_section(group: str) -> str:
    found = [text for heading, text in sections(DOCS / "configs.md").items() if group in code_spans(heading)]
    assert found, f"docs/configs.md has no '## `{group}`' section for conf/{group}/"
    return found[0]


def option_files() -> list[Path]:
    return sorted(path for path in CONF.rglob("*.yaml") if path.parent != CONF)


def keys(path: Path) -> list[str]:
    """The settings an option file gives (not Hydra's `defaults` list, not the `name` every option has);
    none for files that set global or Hydra-internal values (suites, subsets, conf/hydra/regbench.yaml)."""
    text = path.read_text()
    if "# @package _global_" in text or path == CONF / "hydra" / "regbench.yaml":
        return []
    return [key for key in (yaml.safe_load(text) or {}) if key not in ("defaults", "name")]


@pytest.mark.parametrize("path", option_files(), ids=lambda p: str(p.relative_to(CONF)))
def test_every_config_option_and_key_is_documented(path):
    group = path.relative_to(CONF).parts[0]
    section = group_section(group)
    assert named_option(section, group, path.stem), \
        f"conf/{path.relative_to(CONF)}: option `{path.stem}` is not named in docs/configs.md's `{group}` section"
    # a launcher's keys are on the cluster page, with what each sets in sbatch
    where, text = (("docs/cluster.md", (DOCS / "cluster.md").read_text()) if path.parent.name == "launcher"
                   else (f"docs/configs.md's `{group}` section", section))
    missing = [key for key in keys(path) if not named_key(text, key)]
    assert missing == [], f"conf/{path.relative_to(CONF)}: keys {missing} are not named in {where}"


def test_every_top_level_key_is_documented():
    section = next(text for heading, text in sections(DOCS / "configs.md").items() if heading.startswith("Top level"))
    top = [key for key in yaml.safe_load((CONF / "config.yaml").read_text()) if key != "defaults"]
    assert "replicates" in top
    assert [key for key in top if not named_key(section, key)] == []


def test_the_option_check_fails_for_an_undocumented_option_or_key():
    section = group_section("regularizer")
    assert named_option(section, "regularizer", "dropout") and named_key(section, "drop_prob") is False
    assert not named_option(section, "regularizer", "shrink")
    assert named_option("`subset=full`", "subset", "full") and not named_option("`subset=fuller`", "subset", "full")


# ---- docs/reference_table.py ----

def reference_table(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DOCS / "reference_table.py"), *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real two-job sweep (none and l2, 2 seeds, 1 epoch) and its leaderboard.md."""
    out = tmp_path_factory.mktemp("sweep")
    done = run_cli("-m", "regularizer=none,l2", "+suite=smoke", "trainer.epochs=1", "hydra/launcher=basic",
                   f"hydra.sweep.dir={out}", "progress=false")
    assert done.returncode == 0, done.stderr
    return out


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of a markdown table's lines (header first, the |---| line left out)."""
    rows = [line.strip().strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows]


@pytest.mark.slow
def test_reference_table_prints_the_leaderboards_numbers_in_the_columns_asked(sweep):
    board = markdown_rows((sweep / "leaderboard.md").read_text())
    header, rows = board[0], board[1:]
    columns = ["technique", "seeds", "test acc %", "Δ test acc %"]
    done = reference_table(str(sweep), "--columns", *columns)
    assert done.returncode == 0, done.stderr
    printed = markdown_rows(done.stdout)
    assert printed[0] == columns
    assert printed[1:] == [[row[header.index(name)] for name in columns] for row in rows]
    assert sorted(row[0] for row in printed[1:]) == ["l2", "none"]
    assert done.stdout.splitlines()[1] == "|---|---|---|---|"


@pytest.mark.slow
def test_reference_table_filters_rows_and_refuses_unknown_columns_in_one_line(sweep):
    done = reference_table(str(sweep), "--dataset", "mnist1d", "--model", "mlp", "--columns", "technique")
    assert done.returncode == 0 and len(markdown_rows(done.stdout)) == 3, done.stderr
    for args, message in ((["--dataset", "toy1d"], "no row for dataset=toy1d"),
                          (["--columns", "technique", "test accuracy"], "no column 'test accuracy'"),
                          (["--tuned"], "no tuned-vs-default table")):
        done = reference_table(str(sweep), *args)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert reference_table(str(sweep / "missing")).returncode == 2
