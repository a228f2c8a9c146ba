"""Checks `mudar eval retrieval` against an independent recomputation.

    python check_retrieval.py RANKINGS.json EVAL.json STORE

RANKINGS.json: `mudar retrieve --json -k <all>` for every song; EVAL.json:
`mudar eval retrieval --json` on the same store, model and lambda. A dance is
relevant to a song when its file name carries the song's seed (`-m0003`, as
`mudar synth --music 3` names it). Recomputes each query's average precision
with scikit-learn from the hybrid scores the rankings list, R@1, R@5 and P@10
from their order, and checks the evaluation's per-query figures. Then runs the
DuckDB embedding query the docs show and checks it against NumPy.
"""

import json
import re
import sys

import duckdb
import numpy as np
from sklearn.metrics import average_precision_score


def seed_of(path, pattern):
    found = re.search(pattern, path)
    return int(found.group(1)) if found else None


def main(rankings_path, eval_path, store):
    rankings = json.load(open(rankings_path))
    report = json.load(open(eval_path))
    per_query = {q["music"]: q for q in report["per_query"]}
    assert len(rankings) == len(per_query) == report["queries"], (len(rankings), report["queries"])
    for ranking in rankings:
        song = seed_of(ranking["music"], r"dance-(\d+)-")
        dances = ranking["dances"]
        assert len(dances) == report["candidates"], (len(dances), report["candidates"])
        relevant = [seed_of(d["input"], r"-m(\d+)\.") == song for d in dances]
        scores = [d["hybrid"] for d in dances]
        assert scores == sorted(scores, reverse=True), "rankings are best first"
        ap = average_precision_score(relevant, scores)
        theirs = per_query[ranking["music"]]["with_rhythm"]
        assert abs(ap - theirs["map"]) < 1e-9, (ranking["music"], ap, theirs)
        assert float(any(relevant[:1])) == theirs["r_at_1"], (ranking["music"], theirs)
        assert float(any(relevant[:5])) == theirs["r_at_5"], (ranking["music"], theirs)
        assert abs(sum(relevant[:10]) / 10 - theirs["p_at_10"]) < 1e-12, (ranking["music"], theirs)

    # The docs' DuckDB query: clips nearest a clip's music by embedding, in SQL alone.
    clips = f"read_parquet('{store}/clips/*.parquet')"
    width = duckdb.sql(f"SELECT max(len(visual_embedding)) FROM {clips}").fetchall()[0][0]
    query = f"""
        WITH q AS (SELECT audio_embedding::FLOAT[{width}] AS e FROM {clips} ORDER BY input, clip LIMIT 1)
        SELECT input, clip, array_cosine_similarity(visual_embedding::FLOAT[{width}], q.e) AS cosine
        FROM {clips}, q ORDER BY cosine DESC LIMIT 5
    """
    top = duckdb.sql(query).fetchall()
    rows = duckdb.sql(f"SELECT input, clip, visual_embedding, audio_embedding FROM {clips} ORDER BY input, clip").fetchall()
    q = np.array(rows[0][3], dtype=np.float64)

    def cosine(v):
        v = np.array(v, dtype=np.float64)
        return float(v @ q / np.linalg.norm(v) / np.linalg.norm(q))

    expected = sorted(((cosine(v), i, c) for i, c, v, _ in rows), reverse=True)[:5]
    for (input_, clip, got), (want, _, _) in zip(top, expected):
        assert abs(got - want) < 1e-5, (input_, clip, got, want)
    print("checked", len(rankings), "queries and the DuckDB query")


if __name__ == "__main__":
    main(*sys.argv[1:4])
