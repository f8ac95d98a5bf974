"""Exit statuses of the ``convcheck`` command (the same for every subcommand).

====  ==========================================================================================
0     done; for ``verify``: every case ran, every positive check holds and every negative
      control fails as it must
1     ``verify``: a check did not come out as expected (the report says which)
2     bad input: an option, a case file, a data file or an output path is not acceptable; the
      one-line message names the field, the file and the allowed values; nothing was run
3     ``verify``: incomplete — some cases could not run (their data is missing) and were
      SKIPPED; the checks that ran are reported, but the suite was not verified
130   interrupted by Ctrl-C / ``SIGINT`` (143: ``SIGTERM``), i.e. 128 + the signal number;
      workers are stopped, no partial output is left
====  ==========================================================================================
"""

from __future__ import annotations

VERIFIED = 0
FAILED = 1
BAD_INPUT = 2
INCOMPLETE = 3
