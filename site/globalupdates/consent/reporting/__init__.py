"""The operator's side: the ``flask consent`` commands, the statistics and the HTML report."""
