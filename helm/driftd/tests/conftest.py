"""One closing line for scripts/test.sh: `helm chart: N passed, M failed, K skipped`."""


def pytest_terminal_summary(terminalreporter):
    stats = terminalreporter.stats
    count = lambda key: len([r for r in stats.get(key, []) if getattr(r, "when", "call") != "teardown" or key == "error"])
    terminalreporter.write_line(
        "helm chart: %d passed, %d failed, %d skipped"
        % (count("passed"), count("failed") + count("error"), count("skipped"))
    )
