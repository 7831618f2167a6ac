/*
 * import.h - pxctl import: CSV files into the roster and the activation service.
 */
#ifndef PXCTL_IMPORT_H
#define PXCTL_IMPORT_H

int pxctl_import_main(int argc, char **argv);

#endif
