"""scikit-learn's average_precision_score on the cases retrieval_sklearn.rs writes.

    python average_precision.py DIR

DIR/cases.json: [{"name", "scores", "relevant"}]; writes DIR/ap.json: {name: AP}.
"""

import json
import sys
from pathlib import Path

from sklearn.metrics import average_precision_score


def main(folder):
    cases = json.loads((folder / "cases.json").read_text())
    result = {c["name"]: float(average_precision_score(c["relevant"], c["scores"])) for c in cases}
    (folder / "ap.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
