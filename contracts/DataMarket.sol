// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

interface IFeePool {
    function depositFees(uint256 amount) external;
}

/// @title DataMarket
/// @notice Consumers pay for the network's data through unidirectional payment channels. A
/// consumer deposits the payment token; a provider (an API operator on this contract's list) serves
/// it and receives in return EIP-712 vouchers the consumer signs, each naming the cumulative amount
/// the consumer owes that provider and a commitment to everything it was served (a running hash of
/// the served readings' digests, and their count). The latest voucher supersedes every earlier one,
/// so one redemption settles many requests: the provider receives the voucher's cumulative amount
/// minus what it already redeemed. Nothing can take more from a consumer than the largest amount it
/// signed for a provider.
///
/// Redeemed amounts go to the RewardDistributor's fee pool; the validators credit them, by the
/// network's rules, to the owners of the devices whose readings were served, the provider and the
/// protocol, in the same cumulative rewards tree that pays emission. The Redeemed event carries the
/// voucher's commitment so that they can check what the provider publishes against it.
///
/// A consumer withdraws what is unspent only after a delay it announces: until then, providers can
/// still redeem the vouchers they hold, from the same deposit.
contract DataMarket is EIP712, Ownable {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice Providers listed at most: validators fetch what each published every epoch.
    uint256 public constant MAX_PROVIDERS = 32;
    /// @notice Longest provider URL, in bytes.
    uint256 public constant MAX_PROVIDER_URL_BYTES = 256;

    bytes32 private constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address consumer,address provider,uint256 cumulativeAmount,bytes32 served,uint64 servedCount)"
    );

    /// @notice The caller is not a listed provider.
    error MarketUnknownProvider(address provider);
    error MarketProviderExists(address provider);
    error MarketProviderLimit(uint256 maxProviders);
    error MarketInvalidProviderUrl(uint256 length);
    error MarketNotProviderOrOwner(address provider, address caller);
    error MarketZeroAmount();
    /// @notice The voucher's signature is not the consumer's (for this contract, chain and provider).
    error MarketInvalidVoucherSignature(address consumer, address provider);
    /// @notice The voucher's cumulative amount is not above what the provider already redeemed.
    error MarketNothingToRedeem(address consumer, address provider, uint256 cumulativeAmount, uint256 redeemed);
    /// @notice The voucher's served count is below that of a voucher already redeemed.
    error MarketServedCountDecreased(uint64 servedCount, uint64 redeemedCount);
    /// @notice The consumer's deposit does not cover what the voucher adds.
    error MarketInsufficientDeposit(address consumer, uint256 needed, uint256 available);
    error MarketNoWithdrawal(address consumer);
    /// @notice The announced withdrawal is not due yet.
    error MarketWithdrawalNotDue(address consumer, uint64 dueAt);

    event ProviderAdded(address indexed provider, string url);
    event ProviderUrlChanged(address indexed provider, string url);
    event ProviderRemoved(address indexed provider);
    event Deposited(address indexed consumer, address indexed from, uint256 amount, uint256 balance);
    event WithdrawalRequested(address indexed consumer, uint256 amount, uint64 dueAt);
    event Withdrawn(address indexed consumer, uint256 amount, uint256 balance);
    /// @param amount what this redemption moved from the consumer's deposit to the fee pool
    /// @param cumulativeAmount the voucher's cumulative amount (now the pair's redeemed total)
    /// @param served the voucher's commitment to every reading the provider served the consumer
    /// @param servedCount how many readings `served` commits to
    event Redeemed(
        address indexed consumer,
        address indexed provider,
        uint256 amount,
        uint256 cumulativeAmount,
        bytes32 served,
        uint64 servedCount
    );

    struct Account {
        uint128 balance;
        uint128 withdrawal;
        uint64 withdrawalDueAt;
    }

    struct Channel {
        uint192 redeemed;
        uint64 servedCount;
    }

    IERC20 private immutable _token;
    IFeePool private immutable _feePool;
    address private immutable _treasury;
    uint64 private immutable _withdrawalDelay;

    mapping(address consumer => Account) private _accounts;
    mapping(address consumer => mapping(address provider => Channel)) private _channels;
    address[] private _providers;
    mapping(address provider => string) private _providerUrls;
    mapping(address provider => uint256) private _providerIndexPlusOne;

    /// @param token_ the payment token: the token the fee pool pays rewards in
    /// @param feePool_ the RewardDistributor, whose fee pool receives every redemption
    /// @param governance_ keeps the provider list
    /// @param treasury_ the protocol's account: validators credit it the protocol's share of fees
    /// @param withdrawalDelay_ seconds between announcing a withdrawal and taking it
    constructor(IERC20 token_, IFeePool feePool_, address governance_, address treasury_, uint64 withdrawalDelay_)
        EIP712("depin", "1")
        Ownable(governance_)
    {
        _token = token_;
        _feePool = feePool_;
        _treasury = treasury_;
        _withdrawalDelay = withdrawalDelay_;
        token_.forceApprove(address(feePool_), type(uint256).max);
    }

    // ---------------------------------------------------------------- providers

    /// @notice Lists `provider` (its operator's address) with the URL where it publishes what it served.
    function addProvider(address provider, string calldata url) external onlyOwner {
        if (_providerIndexPlusOne[provider] != 0) revert MarketProviderExists(provider);
        if (_providers.length >= MAX_PROVIDERS) revert MarketProviderLimit(MAX_PROVIDERS);
        _requireUrl(url);
        _providers.push(provider);
        _providerIndexPlusOne[provider] = _providers.length;
        _providerUrls[provider] = url;
        emit ProviderAdded(provider, url);
    }

    /// @notice Changes a listed provider's URL; by governance or the provider itself.
    function setProviderUrl(address provider, string calldata url) external {
        _requireProviderOrOwner(provider);
        _requireUrl(url);
        _providerUrls[provider] = url;
        emit ProviderUrlChanged(provider, url);
    }

    /// @notice Takes a provider off the list; by governance or the provider itself. Its unredeemed
    /// vouchers can no longer be redeemed.
    function removeProvider(address provider) external {
        _requireProviderOrOwner(provider);
        uint256 index = _providerIndexPlusOne[provider] - 1;
        address last = _providers[_providers.length - 1];
        _providers[index] = last;
        _providerIndexPlusOne[last] = index + 1;
        _providers.pop();
        delete _providerIndexPlusOne[provider];
        delete _providerUrls[provider];
        emit ProviderRemoved(provider);
    }

    // ---------------------------------------------------------------- consumers

    /// @notice Adds `amount` payment tokens (approved beforehand) to the caller's deposit.
    function deposit(uint256 amount) external {
        depositFor(msg.sender, amount);
    }

    /// @notice Adds `amount` payment tokens from the caller (approved beforehand) to `consumer`'s deposit.
    function depositFor(address consumer, uint256 amount) public {
        if (amount == 0) revert MarketZeroAmount();
        _token.safeTransferFrom(msg.sender, address(this), amount);
        Account storage account = _accounts[consumer];
        uint128 balance = (uint256(account.balance) + amount).toUint128();
        account.balance = balance;
        emit Deposited(consumer, msg.sender, amount, balance);
    }

    /// @notice Announces that the caller will take `amount` of its deposit back, due after the
    /// withdrawal delay; replaces any earlier announcement (and restarts the delay). Providers can
    /// still redeem from the whole deposit until the withdrawal is taken.
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert MarketZeroAmount();
        Account storage account = _accounts[msg.sender];
        uint64 dueAt = (block.timestamp + _withdrawalDelay).toUint64();
        (account.withdrawal, account.withdrawalDueAt) = (amount.toUint128(), dueAt);
        emit WithdrawalRequested(msg.sender, amount, dueAt);
    }

    /// @notice Takes the announced withdrawal once due: the announced amount, or what is left of the
    /// deposit when providers redeemed part of it meanwhile.
    /// @return amount tokens sent to the caller
    function withdraw() external returns (uint256 amount) {
        Account storage account = _accounts[msg.sender];
        if (account.withdrawal == 0) revert MarketNoWithdrawal(msg.sender);
        if (block.timestamp < account.withdrawalDueAt) {
            revert MarketWithdrawalNotDue(msg.sender, account.withdrawalDueAt);
        }
        uint128 balance = account.balance;
        amount = account.withdrawal < balance ? account.withdrawal : balance;
        // cannot underflow: amount <= balance
        unchecked {
            balance -= uint128(amount);
        }
        (account.balance, account.withdrawal, account.withdrawalDueAt) = (balance, 0, 0);
        _token.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount, balance);
    }

    // ---------------------------------------------------------------- redemption

    /// @notice Redeems `consumer`'s voucher for the calling provider: moves the voucher's cumulative
    /// amount minus what the provider already redeemed from the consumer's deposit to the fee pool.
    /// @param consumer who signed the voucher
    /// @param cumulativeAmount everything the consumer owes the provider, as signed
    /// @param served the voucher's commitment to what the provider served (as signed)
    /// @param servedCount the number of readings `served` commits to (as signed)
    /// @param signature the consumer's EIP-712 signature (an EOA's, or an ERC-1271 contract's)
    /// @return amount tokens moved to the fee pool
    function redeem(
        address consumer,
        uint256 cumulativeAmount,
        bytes32 served,
        uint64 servedCount,
        bytes calldata signature
    ) external returns (uint256 amount) {
        address provider = msg.sender;
        if (_providerIndexPlusOne[provider] == 0) revert MarketUnknownProvider(provider);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(VOUCHER_TYPEHASH, consumer, provider, cumulativeAmount, served, servedCount))
        );
        if (!SignatureChecker.isValidSignatureNow(consumer, digest, signature)) {
            revert MarketInvalidVoucherSignature(consumer, provider);
        }
        Channel storage channel = _channels[consumer][provider];
        uint256 redeemed = channel.redeemed;
        if (cumulativeAmount <= redeemed) {
            revert MarketNothingToRedeem(consumer, provider, cumulativeAmount, redeemed);
        }
        if (servedCount < channel.servedCount) revert MarketServedCountDecreased(servedCount, channel.servedCount);
        // cannot underflow: cumulativeAmount > redeemed was checked just above
        unchecked {
            amount = cumulativeAmount - redeemed;
        }
        Account storage account = _accounts[consumer];
        uint128 balance = account.balance;
        if (amount > balance) revert MarketInsufficientDeposit(consumer, amount, balance);
        // cannot underflow: amount <= balance
        unchecked {
            account.balance = balance - uint128(amount);
        }
        (channel.redeemed, channel.servedCount) = (cumulativeAmount.toUint192(), servedCount);
        _feePool.depositFees(amount);
        emit Redeemed(consumer, provider, amount, cumulativeAmount, served, servedCount);
    }

    // ---------------------------------------------------------------- views

    function token() external view returns (address) {
        return address(_token);
    }

    function feePool() external view returns (address) {
        return address(_feePool);
    }

    /// @notice The protocol's account, credited the protocol's share of every redemption (and what
    /// a provider could not show it served) in the rewards tree.
    function treasury() external view returns (address) {
        return _treasury;
    }

    function withdrawalDelay() external view returns (uint64) {
        return _withdrawalDelay;
    }

    /// @notice A consumer's deposit and its announced withdrawal (0, 0 when none).
    function accountOf(address consumer)
        external
        view
        returns (uint256 balance, uint256 withdrawal, uint64 withdrawalDueAt)
    {
        Account storage account = _accounts[consumer];
        return (account.balance, account.withdrawal, account.withdrawalDueAt);
    }

    /// @notice What `provider` redeemed from `consumer` so far, and the served count of that voucher.
    function redeemedOf(address consumer, address provider)
        external
        view
        returns (uint256 redeemed, uint64 servedCount)
    {
        Channel storage channel = _channels[consumer][provider];
        return (channel.redeemed, channel.servedCount);
    }

    function providers() external view returns (address[] memory) {
        return _providers;
    }

    function providerUrl(address provider) external view returns (string memory) {
        if (_providerIndexPlusOne[provider] == 0) revert MarketUnknownProvider(provider);
        return _providerUrls[provider];
    }

    function isProvider(address provider) external view returns (bool) {
        return _providerIndexPlusOne[provider] != 0;
    }

    // ---------------------------------------------------------------- internals

    function _requireUrl(string calldata url) private pure {
        uint256 length = bytes(url).length;
        if (length == 0 || length > MAX_PROVIDER_URL_BYTES) revert MarketInvalidProviderUrl(length);
    }

    function _requireProviderOrOwner(address provider) private view {
        if (_providerIndexPlusOne[provider] == 0) revert MarketUnknownProvider(provider);
        if (msg.sender != provider && msg.sender != owner()) revert MarketNotProviderOrOwner(provider, msg.sender);
    }
}
