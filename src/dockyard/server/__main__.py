from dockyard.server.main import main

main()
