from qrr.cli import main

main()
