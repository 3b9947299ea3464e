"""What the user reads and types: terminal colours and progress, text tables and number formats,
and the command-line pieces every command shares.
"""
