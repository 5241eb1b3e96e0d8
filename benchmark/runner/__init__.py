"""The benchmark runner: config → split → features → models × seeds → metrics → statistics → tables."""
