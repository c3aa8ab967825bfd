"""evalsite.stats is pure: importable and usable without Django, using numpy and scipy only."""
import ast
import subprocess
import sys
from pathlib import Path

import evalsite.stats

PACKAGE = Path(evalsite.stats.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy", "scipy"}


def test_stats_import_and_run_with_django_unimportable():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('django', 'rest_framework', 'pandas'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "from evalsite.stats import Judgments, summarize\n"
        "j = Judgments(system_a=np.array([0, 1, 0]), system_b=np.array([1, 0, 1]),\n"
        "              outcome=np.array([1.0, 0.5, 0.0]), prompt=np.array([0, 1, 1]))\n"
        "s = summarize(j, systems=['r', 'c'], reference=0, rounds=50)\n"
        "assert s.head_to_head[0].n == 3\n"
        "assert not any(m.split('.')[0] == 'django' for m in sys.modules)\n"
        "print('ok')\n"
    )
    root = PACKAGE.parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_stats_modules_import_only_the_standard_library_numpy_and_scipy():
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in stdlib or top in ALLOWED_THIRD_PARTY or top == "__future__", f"{path.name} imports {name}"
