"""Output for people: every table and line labctl prints on a terminal.

Host and user text (names, MAC addresses, Docker's errors) is printed literally: the consoles here read no markup
and no emoji codes (`12:71:13:cd:47:c9` stays a MAC address). NO_COLOR, or output that is not a terminal, gives
plain text. Tables carry no title (a title wraps with the table's width): a heading line comes before each.
"""
