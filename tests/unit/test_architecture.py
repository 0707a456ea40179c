"""The package's shape: no import cycles between its modules (the layers themselves are `lint-imports`'s
contracts in pyproject.toml, run by `make lint`)."""

from __future__ import annotations

import grimp


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = grimp.build_graph("dunning")
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.append(" -> ".join((importer, *back)))
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_domain_knows_nothing_above_it() -> None:
    graph = grimp.build_graph("dunning")
    above = ("dunning.adapters", "dunning.services", "dunning.runtime", "dunning.local", "dunning.cli")
    for module in graph.find_children("dunning.domain"):
        reached = graph.find_upstream_modules(module)
        assert not [name for name in reached if name.startswith(above)], module
