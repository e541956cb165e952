"""The template's benchmark harness: `make bench`, or `python -m benchmarks --help`.

One job per module: renders.py renders and installs the projects under test,
backends.py gives the all-on render its PostgreSQL database and Redis prefix,
servers.py starts and stops every server (apps/ holds the helper apps), load.py is
the load generator (a separate process), measure.py reads CPU time and memory from
/proc, placement.py pins processes to CPUs, suite.py runs the measurements and
report.py turns their results into BENCHMARKS.md.
"""
