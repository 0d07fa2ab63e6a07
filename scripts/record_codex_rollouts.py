"""Record Codex CLI rollout files for the offline digest tests (tests/data/codex/).

Drives the real Codex CLI (``codex exec``, then ``codex exec resume`` for later turns of the same session)
against the scripted loopback Responses API of ``tests/fake_openai.py``, in a throw-away ``CODEX_HOME`` and
working directory, and copies the rollout files it writes to ``tests/data/codex/<scenario>.jsonl``.

Scenarios (each one session):

* ``commands-and-patch``: turn 1 runs a command that succeeds and one that fails (exit 2), turn 2 adds a
  file and edits another with ``apply_patch`` (the heredoc form through ``exec_command``, the form Codex
  recognises whatever the model's tool set) and runs a test that fails then passes, turn 3 only answers;
* ``failing-streak``: three failing commands in one turn (escalation), then a message;
* ``long-session``: a session the size of a real one, on a project with a package, 28 tests and a git
  history: four turns that list the files, read the log and the code, run the whole suite verbosely (two
  failures with their tracebacks), fix the code with a patch, show the diff, commit, add a module and its
  tests in a patch, fail and fix a test, commit with ``git log --stat``: mostly real command output, as in
  the sessions maestro digests (the two above are mostly Codex's own instructions).

What is changed in the copies, and only that: the temporary directories (``CODEX_HOME``, the working
directory, the user's home) are replaced by ``/codex-home``, ``/work/project`` and ``/home/user``, so the
files do not depend on the machine that recorded them.  Everything else (ids, timestamps, instructions,
record types the parser ignores) is kept as Codex wrote it.

Run: ``python scripts/record_codex_rollouts.py [--codex PATH]`` (default: ``.ci/cache/codex``'s binary,
which ``.ci/run`` installs); re-running replaces the files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_openai import FakeOpenAI, Item, function_call, scripted, text  # noqa: E402

OUT = ROOT / "tests" / "data" / "codex"
DEFAULT_CODEX = ROOT / ".ci" / "cache" / "codex" / "node_modules" / ".bin" / "codex"

ADD_TEST = """apply_patch <<'EOF'
*** Begin Patch
*** Add File: tests/test_calc.py
+import unittest
+
+from calc import add
+
+
+class AddTest(unittest.TestCase):
+    def test_add(self):
+        self.assertEqual(add(2, 3), 5)
*** End Patch
EOF"""

FIX = """apply_patch <<'EOF'
*** Begin Patch
*** Update File: calc.py
@@
 def add(a, b):
-    return a - b
+    return a + b
*** End Patch
EOF"""

TESTS = "python3 -m unittest -v tests.test_calc 2>&1 | tail -4"


def exec_call(cmd: str, **extra: Any) -> Item:
    return function_call("exec_command", {"cmd": cmd, **extra})


# Each scenario: (prompts, answers).  One answer per model request, in order: a turn asks once for its
# prompt and once more after each batch of tool outputs.
Scenario = tuple[list[str], list[list[Item]]]

SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "commands-and-patch": lambda: (
        ["Look at the project and run its checks.", "Fix add and add a test.", "Summarise what you did."],
        [
            # turn 1: a command that succeeds, a call Codex refuses, a command that fails
            [reasoning("Listing the project first."), text("I will look at the files first."), exec_call("ls")],
            [exec_call("python3 -c 'import calc; print(calc.add(2, 3))'", justification="check add")],
            [exec_call("test \"$(python3 -c 'import calc; print(calc.add(2, 3))')\" = 5")],
            [text("add(2, 3) does not return 5: calc.add subtracts.")],
            # turn 2: a patch adding a test, the test fails, a patch fixing the code, tests pass, commit
            [exec_call(ADD_TEST)],
            [exec_call(TESTS + "; exit ${PIPESTATUS[0]}")],
            [exec_call(FIX)],
            [exec_call(TESTS + "; exit ${PIPESTATUS[0]}")],
            [exec_call("git add -A && git commit -qm 'Fix add' && git log --oneline | head -1")],
            [text("Fixed `add` (it subtracted) and added tests/test_calc.py; the tests pass and the fix is committed.")],
            # turn 3: words only
            [text("Turn 1 found that add subtracted; turn 2 added a failing test, fixed add with a patch and committed.")],
        ],
    ),
    "failing-streak": lambda: (
        ["Build the project."],
        [
            [exec_call("make build")],
            [exec_call("cargo build")],
            [exec_call("npm run build")],
            [text("None of make, cargo or npm can build this project: there is no build configuration.")],
        ],
    ),
}


def reasoning(summary: str) -> Item:
    return {"type": "reasoning", "summary": [{"type": "summary_text", "text": summary}], "content": None,
            "encrypted_content": None}


def prepare_project(work: Path) -> None:
    (work / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (work / "README.md").write_text("# calc\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)


# The long session ---------------------------------------------------------------------------------------
# A project the size of a small real one (a package, a test suite, a git history), and a session that reads
# it, runs its tests (verbose, with two failures), fixes them, adds a feature over two patches and commits:
# the command outputs are what real sessions carry most (test runs, listings, file contents, git log/diff).

LONG_FILES: dict[str, str] = {
    "README.md": "# inventory\n\nItems, stock levels and prices for a small shop.\n\n"
                 "Run the tests with `python3 -m unittest`.\n",
    "inventory/__init__.py": '"""Inventory: items, stock and prices."""\n\n__version__ = "0.4.0"\n',
    "inventory/models.py": '''"""Items and the stock that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    price_cents: int

    def __post_init__(self) -> None:
        if not self.sku:
            raise ValueError("sku must not be empty")
        if self.price_cents < 0:
            raise ValueError("price must not be negative")


@dataclass
class Stock:
    items: dict[str, Item] = field(default_factory=dict)
    quantities: dict[str, int] = field(default_factory=dict)

    def add(self, item: Item, quantity: int = 1) -> None:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.items[item.sku] = item
        self.quantities[item.sku] = self.quantities.get(item.sku, 0) + quantity

    def remove(self, sku: str, quantity: int = 1) -> None:
        have = self.quantities.get(sku, 0)
        if quantity > have:
            raise ValueError(f"only {have} of {sku} in stock")
        self.quantities[sku] = have - quantity

    def quantity(self, sku: str) -> int:
        return self.quantities.get(sku, 0)

    def low(self, threshold: int = 3) -> list[str]:
        return sorted(sku for sku, n in self.quantities.items() if n < threshold)

    def value_cents(self) -> int:
        return sum(self.items[sku].price_cents * n for sku, n in self.quantities.items())
''',
    "inventory/pricing.py": '''"""Prices: subtotals, discounts, tax and totals, all in cents."""

from __future__ import annotations

from collections.abc import Iterable

#: Value-added tax in percent.
TAX_PERCENT = 20


def subtotal(lines: Iterable[tuple[int, int]]) -> int:
    """Sum of price * quantity over ``(price_cents, quantity)`` lines."""
    return sum(price * quantity for price, quantity in lines)


def discount(amount_cents: int, percent: int) -> int:
    """The discount on ``amount_cents`` at ``percent`` %, rounded half up to a cent."""
    if not 0 <= percent <= 100:
        raise ValueError("percent must be within 0..100")
    return amount_cents * percent // 100


def tax(amount_cents: int, percent: int = TAX_PERCENT) -> int:
    """Tax on ``amount_cents``, rounded half up to a cent."""
    return (amount_cents * percent + 50) // 100


def total(lines: Iterable[tuple[int, int]], discount_percent: int = 0) -> int:
    """Subtotal, less the discount, plus tax on what is left."""
    net = subtotal(lines)
    net -= discount(net, discount_percent)
    return net + tax(net)


def format_cents(amount_cents: int) -> str:
    sign = "-" if amount_cents < 0 else ""
    whole, cents = divmod(abs(amount_cents), 100)
    return f"{sign}{whole}.{cents:02d}"
''',
    "inventory/storage.py": '''"""Stock saved as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from inventory.models import Item, Stock


def save(stock: Stock, path: Path) -> None:
    data = {sku: {"name": item.name, "price_cents": item.price_cents, "quantity": stock.quantity(sku)}
            for sku, item in sorted(stock.items.items())}
    path.write_text(json.dumps(data, indent=2) + "\\n")


def load(path: Path) -> Stock:
    stock = Stock()
    for sku, row in json.loads(path.read_text()).items():
        if row["quantity"]:
            stock.add(Item(sku, row["name"], row["price_cents"]), row["quantity"])
        else:
            stock.items[sku] = Item(sku, row["name"], row["price_cents"])
    return stock
''',
    "inventory/report.py": '''"""A plain-text stock report."""

from __future__ import annotations

from inventory.models import Stock
from inventory.pricing import format_cents


def report(stock: Stock) -> str:
    lines = [f"{'sku':<8} {'name':<20} {'qty':>5} {'value':>10}"]
    for sku, item in sorted(stock.items.items()):
        n = stock.quantity(sku)
        lines.append(f"{sku:<8} {item.name:<20} {n:>5} {format_cents(item.price_cents * n):>10}")
    lines.append(f"{'total':<8} {'':<20} {'':>5} {format_cents(stock.value_cents()):>10}")
    return "\\n".join(lines) + "\\n"
''',
    "tests/__init__.py": "",
    "tests/test_models.py": '''import unittest

from inventory.models import Item, Stock


class ItemTest(unittest.TestCase):
    def test_an_item_needs_a_sku(self):
        with self.assertRaises(ValueError):
            Item("", "pen", 100)

    def test_a_price_is_not_negative(self):
        with self.assertRaises(ValueError):
            Item("p1", "pen", -1)

    def test_items_are_values(self):
        self.assertEqual(Item("p1", "pen", 100), Item("p1", "pen", 100))


class StockTest(unittest.TestCase):
    def setUp(self):
        self.stock = Stock()
        self.pen = Item("p1", "pen", 150)
        self.ink = Item("i1", "ink", 420)

    def test_add_counts(self):
        self.stock.add(self.pen, 2)
        self.stock.add(self.pen)
        self.assertEqual(self.stock.quantity("p1"), 3)

    def test_add_refuses_nothing(self):
        with self.assertRaises(ValueError):
            self.stock.add(self.pen, 0)

    def test_remove(self):
        self.stock.add(self.pen, 5)
        self.stock.remove("p1", 2)
        self.assertEqual(self.stock.quantity("p1"), 3)

    def test_remove_more_than_held(self):
        self.stock.add(self.pen, 1)
        with self.assertRaises(ValueError):
            self.stock.remove("p1", 2)

    def test_unknown_sku_has_none(self):
        self.assertEqual(self.stock.quantity("zz"), 0)

    def test_low(self):
        self.stock.add(self.pen, 1)
        self.stock.add(self.ink, 10)
        self.assertEqual(self.stock.low(), ["p1"])

    def test_low_threshold(self):
        self.stock.add(self.pen, 5)
        self.assertEqual(self.stock.low(6), ["p1"])

    def test_value(self):
        self.stock.add(self.pen, 2)
        self.stock.add(self.ink, 1)
        self.assertEqual(self.stock.value_cents(), 720)

    def test_empty_value(self):
        self.assertEqual(self.stock.value_cents(), 0)
''',
    "tests/test_pricing.py": '''import unittest

from inventory.pricing import discount, format_cents, subtotal, tax, total


class PricingTest(unittest.TestCase):
    def test_subtotal(self):
        self.assertEqual(subtotal([(150, 2), (420, 1)]), 720)

    def test_subtotal_of_nothing(self):
        self.assertEqual(subtotal([]), 0)

    def test_discount(self):
        self.assertEqual(discount(1000, 10), 100)

    def test_discount_rounds_half_up(self):
        self.assertEqual(discount(999, 15), 150)

    def test_discount_bounds(self):
        with self.assertRaises(ValueError):
            discount(100, 101)

    def test_no_discount(self):
        self.assertEqual(discount(999, 0), 0)

    def test_tax(self):
        self.assertEqual(tax(1000), 200)

    def test_tax_rounds_half_up(self):
        self.assertEqual(tax(1003), 201)

    def test_total(self):
        self.assertEqual(total([(500, 2)]), 1200)

    def test_total_with_discount(self):
        self.assertEqual(total([(333, 3)], 15), 1019)

    def test_format(self):
        self.assertEqual(format_cents(123456), "1234.56")

    def test_format_negative(self):
        self.assertEqual(format_cents(-5), "-0.05")
''',
    "tests/test_storage.py": '''import tempfile
import unittest
from pathlib import Path

from inventory.models import Item, Stock
from inventory.storage import load, save


class StorageTest(unittest.TestCase):
    def test_round_trip(self):
        stock = Stock()
        stock.add(Item("p1", "pen", 150), 3)
        stock.add(Item("i1", "ink", 420), 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "stock.json"
            save(stock, path)
            again = load(path)
        self.assertEqual(again.quantities, stock.quantities)
        self.assertEqual(again.items, stock.items)

    def test_sold_out_items_are_kept(self):
        stock = Stock()
        stock.add(Item("p1", "pen", 150), 1)
        stock.remove("p1")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "stock.json"
            save(stock, path)
            again = load(path)
        self.assertIn("p1", again.items)
        self.assertEqual(again.quantity("p1"), 0)
''',
    "tests/test_report.py": '''import unittest

from inventory.models import Item, Stock
from inventory.report import report


class ReportTest(unittest.TestCase):
    def test_report_lists_every_item_and_the_total(self):
        stock = Stock()
        stock.add(Item("p1", "pen", 150), 2)
        stock.add(Item("i1", "ink", 420), 1)
        lines = report(stock).splitlines()
        self.assertEqual(len(lines), 4)
        self.assertIn("i1", lines[1])
        self.assertTrue(lines[-1].startswith("total"))
        self.assertTrue(lines[-1].endswith("7.20"))
''',
}

#: The order the project grew in (one commit each), so ``git log`` shows a history.
LONG_HISTORY = [
    ("README.md", "Start the inventory project"), ("inventory/__init__.py", "Add the package"),
    ("inventory/models.py", "Add items and stock"), ("tests/__init__.py", "Add the test package"),
    ("tests/test_models.py", "Test items and stock"), ("inventory/pricing.py", "Add pricing"),
    ("tests/test_pricing.py", "Test pricing"), ("inventory/storage.py", "Save stock as JSON"),
    ("tests/test_storage.py", "Test storage"), ("inventory/report.py", "Add a stock report"),
    ("tests/test_report.py", "Test the report"),
]

FIX_DISCOUNT = """apply_patch <<'EOF'
*** Begin Patch
*** Update File: inventory/pricing.py
@@
     if not 0 <= percent <= 100:
         raise ValueError("percent must be within 0..100")
-    return amount_cents * percent // 100
+    return (amount_cents * percent + 50) // 100
*** End Patch
EOF"""

ADD_EXPORT = """apply_patch <<'EOF'
*** Begin Patch
*** Add File: inventory/export.py
+\"\"\"Stock as CSV.\"\"\"
+
+from __future__ import annotations
+
+import csv
+import io
+
+from inventory.models import Stock
+
+
+def to_csv(stock: Stock) -> str:
+    out = io.StringIO()
+    writer = csv.writer(out, lineterminator="\\n")
+    writer.writerow(["SKU", "Name", "Quantity", "Price"])
+    for sku, item in sorted(stock.items.items()):
+        writer.writerow([sku, item.name, stock.quantity(sku), item.price_cents])
+    return out.getvalue()
*** Add File: tests/test_export.py
+import csv
+import io
+import unittest
+
+from inventory.export import to_csv
+from inventory.models import Item, Stock
+
+
+class ExportTest(unittest.TestCase):
+    def setUp(self):
+        self.stock = Stock()
+        self.stock.add(Item("p1", "pen, blue", 150), 2)
+        self.stock.add(Item("i1", "ink", 420), 1)
+
+    def test_header(self):
+        self.assertEqual(to_csv(self.stock).splitlines()[0], "sku,name,quantity,price_cents")
+
+    def test_rows_are_sorted_and_quoted(self):
+        rows = list(csv.reader(io.StringIO(to_csv(self.stock))))
+        self.assertEqual(rows[1], ["i1", "ink", "1", "420"])
+        self.assertEqual(rows[2], ["p1", "pen, blue", "2", "150"])
+
+    def test_empty_stock_has_a_header_only(self):
+        self.assertEqual(len(to_csv(Stock()).splitlines()), 1)
*** End Patch
EOF"""

FIX_HEADER = """apply_patch <<'EOF'
*** Begin Patch
*** Update File: inventory/export.py
@@
     writer = csv.writer(out, lineterminator="\\n")
-    writer.writerow(["SKU", "Name", "Quantity", "Price"])
+    writer.writerow(["sku", "name", "quantity", "price_cents"])
*** End Patch
EOF"""

ALL_TESTS = "python3 -m unittest -v 2>&1 | tail -60; exit ${PIPESTATUS[0]}"


def long_session() -> Scenario:
    return (
        ["Get to know this project and run its tests.", "Fix the failing tests and commit the fix.",
         "Add a CSV export of the stock, with tests, and commit it.", "Summarise the session."],
        [
            # turn 1: look around, run the tests (two fail)
            [reasoning("Looking at the layout and history first."), exec_call("ls -la")],
            [exec_call("git log --oneline -25")],
            [exec_call("find . -name '*.py' -not -path './.git/*' | sort | xargs wc -l")],
            [exec_call("cat README.md inventory/models.py")],
            [exec_call(ALL_TESTS)],
            [text("Two of the 28 tests fail, both in tests/test_pricing.py: discount() truncates instead of "
                  "rounding half up.")],
            # turn 2: read the code, fix, run again, commit
            [exec_call("grep -rn 'def discount' -A6 inventory/")],
            [exec_call("sed -n 1,80p inventory/pricing.py")],
            [exec_call(FIX_DISCOUNT)],
            [exec_call(ALL_TESTS)],
            [exec_call("git diff")],
            [exec_call("git add -A && git commit -qm 'Round discounts half up' && git log --oneline -3")],
            [text("discount() now rounds half up; all 28 tests pass and the fix is committed.")],
            # turn 3: a feature over two patches, a failing then passing test run, a commit
            [exec_call("sed -n 1,60p inventory/models.py && cat inventory/report.py")],
            [exec_call(ADD_EXPORT)],
            [exec_call("python3 -m unittest -v tests.test_export 2>&1; exit $?")],
            [exec_call(FIX_HEADER)],
            [exec_call(ALL_TESTS)],
            [exec_call("git add -A && git commit -qm 'Add a CSV export' && git log --stat -3")],
            [text("Added inventory/export.py (to_csv) with three tests; the header now matches the field "
                  "names, the suite passes and the export is committed.")],
            # turn 4: words only
            [text("Turn 1 found two failing discount tests, turn 2 fixed rounding in pricing.discount, turn 3 "
                  "added a CSV export with tests; both changes are committed.")],
        ],
    )


def prepare_long_project(work: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "init", "-q"], cwd=work, env=env, check=True)
    for name, message in LONG_HISTORY:
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(LONG_FILES[name])
        subprocess.run(["git", "add", name], cwd=work, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", message], cwd=work, env=env, check=True)


SCENARIOS["long-session"] = long_session
#: Scenarios whose project is not the two-file one of ``prepare_project``.
PREPARE: dict[str, Callable[[Path], None]] = {"long-session": prepare_long_project}


def record(name: str, codex: Path) -> Path:
    prompts, answers = SCENARIOS[name]()
    fake = FakeOpenAI(scripted(*answers)).start()
    tmp = Path(tempfile.mkdtemp(prefix="codex-rec-"))
    try:
        home, work, user = tmp / "codex-home", tmp / "project", tmp / "user"
        for d in (home, work, user):
            d.mkdir()
        PREPARE.get(name, prepare_project)(work)
        (home / "config.toml").write_text(
            'model = "gpt-5"\nmodel_provider = "fake"\n'
            f'[model_providers.fake]\nname = "fake"\nbase_url = "{fake.base_url}"\n'
            'wire_api = "responses"\nenv_key = "FAKE_KEY"\n'
            f'[projects."{work}"]\ntrust_level = "trusted"\n')
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "CODEX"))},
               "CODEX_HOME": str(home), "HOME": str(user), "FAKE_KEY": "x",
               "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        for index, prompt in enumerate(prompts):
            args = [str(codex), "exec", "--skip-git-repo-check", "--sandbox", "danger-full-access"]
            if index:
                args += ["resume", "--last"]
            subprocess.run([*args, prompt], cwd=work, env=env, check=True, timeout=180,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rollouts = sorted((home / "sessions").rglob("rollout-*.jsonl"))
        if len(rollouts) != 1:
            raise SystemExit(f"{name}: expected one rollout file, found {[str(r) for r in rollouts]}")
        data = rollouts[0].read_text(encoding="utf-8")
        for real, fixed in ((str(home), "/codex-home"), (str(work), "/work/project"), (str(user), "/home/user"),
                            (str(tmp), "/tmp/codex-rec")):
            data = data.replace(real, fixed)
        OUT.mkdir(parents=True, exist_ok=True)
        target = OUT / f"{name}.jsonl"
        target.write_text(data, encoding="utf-8")
        return target
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codex", type=Path, default=DEFAULT_CODEX, help="the codex binary")
    ap.add_argument("scenario", nargs="*", choices=[[], *SCENARIOS], help="default: all")
    a = ap.parse_args()
    for name in a.scenario or SCENARIOS:
        print(record(name, a.codex))
    return 0


if __name__ == "__main__":
    sys.exit(main())
