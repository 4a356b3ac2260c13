// The `kiln` executable. Everything lives in the kiln_cli library (cli.h) so tests can link it.
#include "kiln/cli/cli.h"

int main(int argc, char** argv) { return kiln::cli::Run(argc, argv); }
