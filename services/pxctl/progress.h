/* progress.h - pxctl progress (services/pxctl/progress.c). */
#ifndef PXCTL_PROGRESS_H
#define PXCTL_PROGRESS_H

int pxctl_progress_main(int argc, char **argv);

#endif
