#pragma once
/* Long output (list, history, describe) goes through a pager when stdout is a terminal:
 * $DURABLECTL_PAGER, else $PAGER, else "less" (with LESS=FRSXMK unless $LESS is set, so that
 * output shorter than a screen is printed and the pager exits at once). An empty value or "cat"
 * means no pager. */

/* Starts the pager and points stdout at it; does nothing when stdout is not a tty. */
void pager_open(void);
/* Flushes stdout, closes the pipe and waits for the pager to exit. */
void pager_close(void);
