"""README's and docs/' figures: each names the commit it was measured on and says when the code it measures
changed since (scripts/check_figures.py, run here on the repository and on small repositories made to fail);
and the sentences in docs that restate a figure or a setting agree with it."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from scripts.check_figures import CHANGED, problems
from service.runs import STORE_BYTES

ROOT = Path(__file__).resolve().parent.parent


def _git(folder: Path, *args: str) -> str:
    """git in a throwaway repository, with no user or system configuration (signing, hooks) in the way."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, env=env, timeout=60,
                          check=True)
    return done.stdout.strip()


def test_every_figure_of_the_repository_names_its_commit_and_its_staleness():
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git history: not a git checkout")
    shallow = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"], capture_output=True,
                             text=True, timeout=60).stdout.strip()
    if shallow == "true":
        pytest.skip("needs the git history: a shallow clone lacks the commits the figures were measured on")
    assert problems(ROOT) == []


ENTRY = """
[[figure]]
id = "speed"
file = "README.md"
what = "training speed"
value = "3.5×"
command = "python -m benchmarks"
commit = "{commit}"
paths = ["code.py"]
"""


@pytest.fixture
def repo(tmp_path):
    """A repository with one code file and a README whose one figure was measured on its first commit."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "docs").mkdir()
    (tmp_path / "code.py").write_text("SPEED = 1\n")
    (tmp_path / "README.md").write_text("# x\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "code")
    return tmp_path


def _write(repo: Path, block: str, commit: str | None = None, extra: str = "") -> None:
    commit = _git(repo, "rev-parse", "HEAD") if commit is None else commit
    (repo / "README.md").write_text(f"# x\n\n<!-- figure speed -->\nTraining runs 3.5× faster.\n\n{block}\n"
                                    f"<!-- /figure -->\n{extra}")
    (repo / "docs" / "figures.toml").write_text("not_measured = []\n" + ENTRY.format(commit=commit))


def test_a_fresh_figure_with_its_commit_passes(repo):
    short = _git(repo, "rev-parse", "--short=7", "HEAD")
    _write(repo, f"*Measured on commit `{short}`.*")
    assert problems(repo) == []


def test_a_figure_without_a_commit_fails(repo):
    _write(repo, "*Measured on a quiet machine.*", commit="")
    assert problems(repo) == ["figure speed (README.md): figures.toml gives no commit"]


def test_a_figure_outside_every_block_or_without_an_entry_fails(repo):
    short = _git(repo, "rev-parse", "--short=7", "HEAD")
    _write(repo, f"*Measured on commit `{short}`.*", extra="\nA page draws in 0.4 s.\n\n<!-- figure new -->\nx\n"
                                                            "<!-- /figure -->\n")
    found = problems(repo)
    assert found == ["README.md:9: a figure outside every figure block: A page draws in 0.4 s.",
                     "README.md: figure new has no entry in docs/figures.toml"]


def test_a_stale_figure_must_say_so_and_a_fresh_one_must_not(repo):
    short = _git(repo, "rev-parse", "--short=7", "HEAD")
    _write(repo, f"*Measured on commit `{short}`.*")
    (repo / "code.py").write_text("SPEED = 2\n")
    _git(repo, "commit", "-qam", "faster code")
    (stale,) = problems(repo)
    assert "code.py changed since" in stale and f"say '{CHANGED}'" in stale

    _write(repo, f"*Measured on commit `{short}`; {CHANGED}.*", commit=short)
    assert problems(repo) == []  # stale, and says so next to the figure
    _write(repo, f"*Measured on commit `{short}`; {CHANGED.replace(' since', chr(10) + 'since')}.*", commit=short)
    assert problems(repo) == []  # said across two lines of the file, as Markdown wraps it

    now = _git(repo, "rev-parse", "--short=7", "HEAD")
    _write(repo, f"*Measured on commit `{now}`; {CHANGED}.*")
    (false_alarm,) = problems(repo)
    assert f"says '{CHANGED}', but no commit after {now}" in false_alarm


def test_a_figure_that_depends_on_a_path_no_longer_there_fails(repo):
    short = _git(repo, "rev-parse", "--short=7", "HEAD")
    _write(repo, f"*Measured on commit `{short}`.*")
    _git(repo, "mv", "code.py", "speed.py")  # renamed: its history no longer tells the figure's staleness
    _git(repo, "commit", "-qm", "rename")
    assert any("it depends on code.py, which is not in the repository" in found for found in problems(repo))


def test_a_block_that_hides_its_commit_or_value_fails(repo):
    _write(repo, "*Measured on commit `0000000`.*")
    (repo / "README.md").write_text((repo / "README.md").read_text().replace("3.5×", "4×"))
    found = problems(repo)
    assert any("its value '3.5×' is not in the block" in p for p in found)
    assert any("does not say it was measured on commit" in p for p in found)


# --- sentences in README and docs/ that restate a figure or a setting ------------------------------------

def _text(name: str) -> str:
    return " ".join((ROOT / name).read_text().split())  # one line: sentences wrap anywhere


def test_load_test_doc_says_what_bounds_the_store_and_the_threads():
    text = _text("docs/load_test.md")
    assert f"at most {STORE_BYTES / 2**30:g} GiB of their tensors in memory" in text
    assert "up to 8 finished baselines" not in text and "cores / limit" not in text
    assert "so its numbers never depend on the load or the thread count" in text


def test_cluster_sizing_follows_the_compute_floor_of_one_server():
    floor = re.search(r"a 20-step baseline ([\d.]+) s, a 10-step finetune ([\d.]+) s, so ([\d.]+) core-seconds "
                      r"per student", _text("docs/class.md"))
    baseline, finetune, student = (float(v) for v in floor.groups())
    assert baseline + finetune == pytest.approx(student, abs=0.015)  # three medians, each rounded
    sizing = _text("docs/cluster.md").split("## Sizing for 300 students")[1]
    assert f"needs {student:g} core-seconds" in sizing and f"a baseline {baseline:g}, a finetune {finetune:g}" in sizing
    total = int(re.search(r"need about ([\d,]+) core-seconds", sizing).group(1).replace(",", ""))
    assert total == round(300 * student)
    for cores, seconds in re.findall(r"(\d+)(?: worker cores drain that)? in about (\d+) s", sizing):
        assert int(seconds) == round(total / int(cores))
    assert f"the adapters: {finetune:g} core-seconds each" in sizing


@pytest.mark.parametrize("name", ["README.md", "docs/profile.md", "lora_core/parallel.py"])
def test_no_accuracy_of_an_unnamed_baseline_on_two_thread_counts(name):
    """The 0.9250 / 0.9254 pair named no baseline (the default scores 0.9223 on both)."""
    assert "0.9250" not in _text(name) and "0.9254" not in _text(name)


def test_the_bundled_sample_is_the_size_readme_says():
    size = (ROOT / "lora_core/data/mnist_sample.npz").stat().st_size
    assert f"mnist_sample.npz` ({size / 1e6:.1f} MB)" in _text("README.md")
