"""The shared tail of the check scripts: print each claim's error against its tolerance."""


def report(results):
    """``results``: (name, error, tolerance) triples. Prints them; returns the exit status."""
    failed = 0
    for name, error, tolerance in results:
        ok = error <= tolerance
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: error {error:.2e} (tolerance {tolerance:.0e})")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
