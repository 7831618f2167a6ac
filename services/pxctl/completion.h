/* completion.h - pxctl completion (services/pxctl/completion.c). */
#ifndef PXCTL_COMPLETION_H
#define PXCTL_COMPLETION_H

int pxctl_completion_main(int argc, char **argv);

#endif
