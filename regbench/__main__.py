from regbench.app import main

main()
