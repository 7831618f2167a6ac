/* logs.h - pxctl logs (services/pxctl/logs.c). */
#ifndef PXCTL_LOGS_H
#define PXCTL_LOGS_H

int pxctl_logs_main(int argc, char **argv);

#endif
