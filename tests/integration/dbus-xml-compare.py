#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Usage: dbus-xml-compare.py CONTRACT.xml INTROSPECTED.xml INTERFACE
# Compares interface INTERFACE of two D-Bus introspection documents: its methods, properties and
# signals with their arguments (names, types, directions) and annotations, in order. Comments,
# whitespace and attribute order do not count. Prints the differences and exits 1 when there
# are any.
import sys
import xml.etree.ElementTree as ET


def canon(elem):
    """(tag, sorted attributes, children) of an element, recursively."""
    return (elem.tag, tuple(sorted(elem.attrib.items())), tuple(canon(c) for c in elem))


def lines(elem, depth=0):
    tag, attrs, children = elem
    out = ["  " * depth + tag + " " + " ".join("%s=%s" % a for a in attrs)]
    for c in children:
        out += lines(c, depth + 1)
    return out


def interface(path, name):
    for i in ET.parse(path).getroot().iter("interface"):
        if i.get("name") == name:
            return canon(i)
    sys.exit("%s: no interface %s" % (path, name))


contract, served, name = sys.argv[1:4]
a, b = interface(contract, name), interface(served, name)
if a != b:
    import difflib
    print("%s differs between %s (contract) and %s (daemon):" % (name, contract, served),
          file=sys.stderr)
    sys.stderr.writelines(l + "\n" for l in difflib.unified_diff(lines(a), lines(b), lineterm=""))
    sys.exit(1)
print("%s: the daemon serves the contract" % name)
