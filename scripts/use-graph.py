#!/usr/bin/env python3
"""Import circles between a crate's modules, read from its `use` lines and inline paths.

Usage: scripts/use-graph.py runtime/src agent/src kernels/src

Nodes are module files; an edge a -> b means code in a names an item of b: a
`use crate::…`/`use super::…`/`use self::…` line, or a path written inline in code or an
attribute (`crate::x::f(…)`, `#[error("{}", crate::x::f(.0))]`), resolved to the longest
module path it names. Comments (doc links included) and string literals are not read. A
parent's `pub use child::X` (a facade re-export) and `mod` lines are not edges; unit-test
modules are skipped. Prints each strongly connected component of more than one module."""
import os, re, sys

def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] in ('mod', 'lib', 'main'):
                rel = rel[:-1]
            mods[tuple(rel)] = path
    return mods

# Comments, raw and plain string literals, char literals: blanked before paths are read.
NOT_CODE = re.compile('|'.join([
    r'//[^\n]*', r'/\*.*?\*/',                  # comments, doc comments included
    r'b?r(#*)".*?"\1', r'b?"(?:\\.|[^"\\])*"',   # raw and plain strings
    r"b?'(?:\\.|[^'\\])'",                      # char literals (not lifetimes)
]), re.S)
USE = re.compile(r'(pub(?:\([^)]*\))?\s+)?\buse\s+([^;]+);')
INLINE = re.compile(r'(?<![\w$])(?:crate|super|self)(?:\s*::\s*\w+)+')

def code_of(text):
    text = NOT_CODE.sub(' ', text)
    # stop at the unit-test module: its `use super::*` is not a module dependency
    return re.split(r'#\[cfg\(test\)\]\s*mod\b', text)[0]

def use_lines(code):
    for m in USE.finditer(code):
        tree = re.sub(r'\s+as\s+\w+', '', m.group(2))
        yield bool(m.group(1)), re.sub(r'\s+', '', tree)

def inline_paths(code):
    for m in INLINE.finditer(USE.sub(' ', code)):
        yield re.sub(r'\s+', '', m.group(0))

def expand(tree):
    # a::{b, c::{d}} -> a::b, a::c::d
    m = re.match(r'^(.*?)\{(.*)\}$', tree)
    if not m:
        return [tree]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ''
    for ch in inner:
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
            continue
        depth += ch == '{'
        depth -= ch == '}'
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p:
            out += expand(prefix + p)
    return out

def main(src):
    mods = modules(src)
    edges = {m: set() for m in mods}
    for mod, path in mods.items():
        code = code_of(open(path).read())
        paths = [(is_pub, use) for is_pub, tree in use_lines(code) for use in expand(tree)]
        paths += [(False, path) for path in inline_paths(code)]
        for is_pub, use in paths:
            segs = use.split('::')
            if segs[0] == 'crate':
                base, rest = [], segs[1:]
            elif segs[0] in ('super', 'self'):
                base = list(mod)
                while segs and segs[0] in ('super', 'self'):
                    if segs[0] == 'super':
                        base = base[:-1]
                    segs = segs[1:]
                rest = segs
            else:
                continue
            target = tuple(base)
            for s in rest:
                if target + (s,) in mods:
                    target = target + (s,)
                else:
                    break
            if target == mod:
                continue
            # facade: a parent re-exporting its own descendant
            if is_pub and target[:len(mod)] == mod:
                continue
            edges[mod].add(target)
    # Tarjan
    index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)
    for v in mods:
        if v not in index:
            visit(v)
    name = lambda m: '::'.join(m) or 'crate'
    print(f"{src}: {len(mods)} modules, {sum(len(e) for e in edges.values())} edges, {len(sccs)} circle(s)")
    for comp in sccs:
        members = sorted(comp)
        print('  circle:', ', '.join(name(m) for m in members))
        for m in members:
            for t in sorted(edges[m]):
                if t in comp:
                    print(f'    {name(m)} -> {name(t)}')

for src in sys.argv[1:]:
    main(src)
