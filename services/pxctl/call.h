/* call.h - pxctl call (services/pxctl/call.c). */
#ifndef PXCTL_CALL_H
#define PXCTL_CALL_H

int pxctl_call_main(int argc, char **argv);

#endif
